"""comments.content_hash: the duplicate check finds a comment's words by index

Revision ID: b41c2d9e7a10
Revises: 7e5ea36f7901
Create Date: 2026-12-01 05:30:00

"""
import hashlib

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b41c2d9e7a10'
down_revision = '7e5ea36f7901'
branch_labels = None
depends_on = None


def _digest(content):
    # app.models.text_digest, copied: a migration must not change when the models do
    return hashlib.blake2b(content.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def upgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_hash', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_comments_post_text', ['post_id', 'content_hash'], unique=False)
    comments = sa.table('comments', sa.column('id', sa.Integer), sa.column('content', sa.Text),
                        sa.column('content_hash', sa.String))
    connection = op.get_bind()
    digests = [{"comment_id": id_, "digest": _digest(content)} for id_, content in
               connection.execute(sa.select(comments.c.id, comments.c.content))]
    if digests:
        connection.execute(sa.update(comments)
                           .where(comments.c.id == sa.bindparam("comment_id"))
                           .values(content_hash=sa.bindparam("digest")), digests)


def downgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_post_text')
        batch_op.drop_column('content_hash')
