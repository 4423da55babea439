"""comments: indexes for a page of threads (top-level comments in page order; replies)

Revision ID: d2a8f4c6e1b9
Revises: c7d1e2f3a4b5
Create Date: 2026-12-01 16:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd2a8f4c6e1b9'
down_revision = 'c7d1e2f3a4b5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_parent_id')
        batch_op.create_index('ix_comments_replies', ['parent_id', 'post_id', 'status'],
                              unique=False)
    op.create_index('ix_comments_post_roots', 'comments',
                    ['post_id', 'status', 'created_at', 'id', 'parent_id'], unique=False,
                    sqlite_where=sa.text('parent_id IS NULL'),
                    postgresql_where=sa.text('parent_id IS NULL'))


def downgrade():
    op.drop_index('ix_comments_post_roots', table_name='comments')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_replies')
        batch_op.create_index('ix_comments_parent_id', ['parent_id'], unique=False)
