"""indexes for the duplicate-comment check: a post's comments by author name and by email

Revision ID: b41c2d9e7a10
Revises: 7e5ea36f7901
Create Date: 2026-12-01 05:30:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b41c2d9e7a10'
down_revision = '7e5ea36f7901'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index('ix_comments_post_author', ['post_id', 'author_name'], unique=False)
        batch_op.create_index('ix_comments_email_post', ['author_email', 'post_id'], unique=False)
        batch_op.drop_index('ix_comments_author_email')


def downgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index('ix_comments_author_email', ['author_email'], unique=False)
        batch_op.drop_index('ix_comments_email_post')
        batch_op.drop_index('ix_comments_post_author')
