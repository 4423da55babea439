"""comment_counts: each post's approved comments, kept by triggers

Revision ID: c7d1e2f3a4b5
Revises: b41c2d9e7a10
Create Date: 2026-12-01 06:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7d1e2f3a4b5'
down_revision = 'b41c2d9e7a10'
branch_labels = None
depends_on = None

# The triggers as app/models.py (COUNT_TRIGGERS) creates them with a new schema; copied here,
# as a migration must not change when the models do.
SQLITE = [
    """CREATE TRIGGER comments_counted_insert AFTER INSERT ON comments
    WHEN NEW.status = 'approved'
    BEGIN
        INSERT INTO comment_counts (post_id, approved) VALUES (NEW.post_id, 1)
        ON CONFLICT (post_id) DO UPDATE SET approved = approved + 1;
    END""",
    """CREATE TRIGGER comments_counted_delete AFTER DELETE ON comments
    WHEN OLD.status = 'approved'
    BEGIN
        UPDATE comment_counts SET approved = approved - 1 WHERE post_id = OLD.post_id;
    END""",
    """CREATE TRIGGER comments_counted_update AFTER UPDATE OF status, post_id ON comments
    WHEN OLD.status IS NOT NEW.status OR OLD.post_id IS NOT NEW.post_id
    BEGIN
        UPDATE comment_counts SET approved = approved - 1
        WHERE post_id = OLD.post_id AND OLD.status = 'approved';
        INSERT INTO comment_counts (post_id, approved)
        SELECT NEW.post_id, 1 WHERE NEW.status = 'approved'
        ON CONFLICT (post_id) DO UPDATE SET approved = approved + 1;
    END""",
]
POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION parley_count_comments() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.status = 'approved' THEN
            UPDATE comment_counts SET approved = approved - 1 WHERE post_id = OLD.post_id;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.status = 'approved' THEN
            INSERT INTO comment_counts (post_id, approved) VALUES (NEW.post_id, 1)
            ON CONFLICT (post_id) DO UPDATE SET approved = comment_counts.approved + 1;
        END IF;
        RETURN NULL;
    END
    $$""",
    """CREATE TRIGGER comments_counted
    AFTER INSERT OR DELETE OR UPDATE OF status, post_id ON comments
    FOR EACH ROW EXECUTE FUNCTION parley_count_comments()""",
]


def upgrade():
    op.create_table('comment_counts',
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('approved', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('post_id')
    )
    op.execute("INSERT INTO comment_counts (post_id, approved) "
               "SELECT post_id, COUNT(*) FROM comments WHERE status = 'approved' GROUP BY post_id")
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE, "postgresql": POSTGRESQL}.get(dialect, []):
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS comments_counted_{name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS comments_counted ON comments")
        op.execute("DROP FUNCTION IF EXISTS parley_count_comments()")
    op.drop_table('comment_counts')
