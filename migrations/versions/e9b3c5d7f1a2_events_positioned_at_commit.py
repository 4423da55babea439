"""events and comment_counts on PostgreSQL: written at COMMIT, so a busy post's writers run side by side

Revision ID: e9b3c5d7f1a2
Revises: d2a8f4c6e1b9
Create Date: 2026-12-04 16:30:00

Before: each writer of a post locked its count row (the comments trigger) and the post's live
event lock (pg_advisory_xact_lock, taken by the application) from its INSERT until its COMMIT,
across several round trips, so the writers of one post waited in one line. After: both are taken
by deferred constraint triggers, inside COMMIT. An event's id taken at INSERT is provisional; at
COMMIT, under the post's lock, it is given a new one from the same sequence (so ids become
visible in commit order, as Last-Event-ID replay needs), and a `count` event the post's count
as that commit leaves it. SQLite's triggers are unchanged: it has one writer at a time.

On both, a `count` event now stores only the number ({"count": n}); its heading is worded when it
is read. The downgrade words the headings of the events stored that way, as the code before
this revision sends what is stored.
"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e9b3c5d7f1a2'
down_revision = 'd2a8f4c6e1b9'
branch_labels = None
depends_on = None

# As app/models.py (COUNT_TRIGGERS, EVENT_TRIGGERS) creates them with a new schema; copied here,
# as a migration must not change when the models do.
UPGRADE = [
    """CREATE OR REPLACE FUNCTION parley_count_comments() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.status = 'approved' THEN
            PERFORM pg_advisory_xact_lock(1518206976 + OLD.post_id);
            UPDATE comment_counts SET approved = approved - 1 WHERE post_id = OLD.post_id;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.status = 'approved' THEN
            PERFORM pg_advisory_xact_lock(1518206976 + NEW.post_id);
            UPDATE comment_counts SET approved = approved + 1 WHERE post_id = NEW.post_id;
            IF NOT FOUND THEN  -- the post's first; none if the post went in this transaction
                INSERT INTO comment_counts (post_id, approved)
                SELECT id, 1 FROM posts WHERE id = NEW.post_id
                ON CONFLICT (post_id) DO UPDATE SET approved = comment_counts.approved + 1;
            END IF;
        END IF;
        RETURN NULL;
    END
    $$""",
    "DROP TRIGGER comments_counted ON comments",
    """CREATE CONSTRAINT TRIGGER comments_counted
    AFTER INSERT OR DELETE OR UPDATE OF status, post_id ON comments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION parley_count_comments()""",
    """CREATE OR REPLACE FUNCTION parley_position_event() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        -- the post's commit lock: 0x5A7E0000 + the post's id, as comments_counted takes it
        PERFORM pg_advisory_xact_lock(1518206976 + NEW.post_id);
        IF NEW.kind = 'count' THEN
            UPDATE events SET id = nextval('events_id_seq'), data = json_build_object(
                'count', COALESCE((SELECT approved FROM comment_counts
                                   WHERE post_id = NEW.post_id), 0))::text
            WHERE id = NEW.id;
        ELSE
            UPDATE events SET id = nextval('events_id_seq') WHERE id = NEW.id;
        END IF;
        RETURN NULL;
    END
    $$""",
    """CREATE CONSTRAINT TRIGGER events_positioned AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION parley_position_event()""",
]

# c7d1e2f3a4b5's trigger, at once, as it was.
DOWNGRADE = [
    "DROP TRIGGER IF EXISTS events_positioned ON events",
    "DROP FUNCTION IF EXISTS parley_position_event()",
    "DROP TRIGGER IF EXISTS comments_counted ON comments",
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
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def _heading(count):
    """app.words.comments_heading as it was at this revision."""
    if count == 0:
        return "No comments yet"
    if count == 1:
        return "One comment"
    return f"{count:,} comments"


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
    rows = bind.execute(sa.text(
        "SELECT id, data FROM events WHERE kind = 'count' AND data NOT LIKE '%\"text\"%'")).all()
    for event_id, data in rows:
        count = json.loads(data)["count"] or 0
        bind.execute(sa.text("UPDATE events SET data = :data WHERE id = :id"),
                     {"id": event_id, "data": json.dumps({"count": count, "text": _heading(count)})})
