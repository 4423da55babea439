"""comments.content_html rendered again: what older rules dropped or let through is mended

Before this revision the renderer hid the text after an unclosed `<script>` or `<style>` (and
similar), and kept `cite="javascript:…"` on `<blockquote>` and `<q>`. The stored text was always
intact: every comment's HTML is made again from it with the renderer as it is now.

Revision ID: a7c4e2b9d1f3
Revises: f3c8a1d6b2e4
Create Date: 2026-12-04 17:30:00

"""
from alembic import op
import sqlalchemy as sa

# The renderer itself, not a copy: what this migration is for is "as the renderer renders now"
# (app/comments/content.py is a pure module; it needs no application).
from app.comments.content import render


# revision identifiers, used by Alembic.
revision = 'a7c4e2b9d1f3'
down_revision = 'f3c8a1d6b2e4'
branch_labels = None
depends_on = None

BATCH = 500


def upgrade():
    comments = sa.table('comments', sa.column('id', sa.Integer), sa.column('content', sa.Text),
                        sa.column('content_html', sa.Text))
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(comments.c.id, comments.c.content, comments.c.content_html)
            .where(comments.c.id > last).order_by(comments.c.id).limit(BATCH)).all()
        if not rows:
            break
        changed = [{"comment_id": id_, "html": html} for id_, content, old in rows
                   if (html := render(content)) != old]
        if changed:
            connection.execute(sa.update(comments)
                               .where(comments.c.id == sa.bindparam("comment_id"))
                               .values(content_html=sa.bindparam("html")), changed)
        last = rows[-1][0]


def downgrade():
    pass  # the HTML made by the older rules is not worth making again
