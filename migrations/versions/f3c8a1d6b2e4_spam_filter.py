"""spam_filter, spam_features, spam_examples: the learned spam filter's model (app/spam/)

Revision ID: f3c8a1d6b2e4
Revises: e9b3c5d7f1a2
Create Date: 2026-12-04 16:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f3c8a1d6b2e4'
down_revision = 'e9b3c5d7f1a2'
branch_labels = None
depends_on = None


def upgrade():
    # Empty: the filter starts with no opinion and learns from moderators (or `flask spam train`).
    op.create_table('spam_filter',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('rebuilt', sa.BigInteger(), nullable=False),
    sa.Column('ham', sa.Integer(), nullable=False),
    sa.Column('spam', sa.Integer(), nullable=False),
    sa.Column('ham_features', sa.BigInteger(), nullable=False),
    sa.Column('spam_features', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('spam_features',
    sa.Column('bucket', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ham', sa.Integer(), nullable=False),
    sa.Column('spam', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('bucket')
    )
    op.create_index('ix_spam_features_version', 'spam_features', ['version'], unique=False)
    op.create_table('spam_examples',
    sa.Column('digest', sa.String(length=32), nullable=False),
    sa.Column('spam', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('digest')
    )


def downgrade():
    op.drop_table('spam_examples')
    op.drop_index('ix_spam_features_version', table_name='spam_features')
    op.drop_table('spam_features')
    op.drop_table('spam_filter')
