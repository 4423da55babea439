"""Each post's approved-comment count, kept by the database's own triggers (comment_counts).

Whatever way a comment comes, goes or changes status — the API, moderation, bulk SQL, raw SQL,
a move to another post — the stored count stays what counting the rows would give.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.comments import service
from app.extensions import db
from app.models import Comment, CommentCount, CommentStatus, Post
from tests.test_comments import GUEST, api_post, configure


def _counts(app) -> dict[int, tuple[int, int]]:
    """post id -> (stored count, counted rows)"""
    with app.app_context():
        counted = dict(db.session.execute(
            sa.select(Comment.post_id, sa.func.count()).where(
                Comment.status == CommentStatus.APPROVED).group_by(Comment.post_id)).all())
        return {p: (CommentCount.of(p), counted.get(p, 0))
                for p in db.session.scalars(sa.select(Post.id))}


def _agree(app) -> dict[int, int]:
    counts = _counts(app)
    assert all(stored == counted for stored, counted in counts.values()), counts
    return {post: stored for post, (stored, _) in counts.items()}


def test_the_count_follows_every_way_a_comment_changes(app, client):
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    post_id = _agree(app).popitem()[0]
    before = _agree(app)[post_id]  # the seed's reader comment

    for n in range(3):
        assert api_post(client, {**GUEST, "comment": f"Number {n}"}).status_code == 201
    assert _agree(app)[post_id] == before + 3

    configure(app, comment_moderation="everyone")
    assert api_post(client, {**GUEST, "comment": "Held"}).status_code == 201
    assert _agree(app)[post_id] == before + 3  # a held comment is not counted

    with app.app_context():
        held = db.session.scalar(sa.select(Comment).where(Comment.content == "Held"))
        service.set_status(held, CommentStatus.APPROVED)
        db.session.commit()
        assert CommentCount.of(post_id) == before + 4
        service.set_status(held, CommentStatus.SPAM)
        db.session.commit()
        one = db.session.scalar(sa.select(Comment).where(Comment.content == "Number 0"))
        service.delete(one)
        db.session.commit()
    assert _agree(app)[post_id] == before + 2

    with app.app_context():  # bulk and raw SQL, behind the application's back
        db.session.execute(sa.update(Comment).where(Comment.content == "Number 1")
                           .values(status=CommentStatus.TRASH))
        db.session.execute(sa.text("UPDATE comments SET status = 'approved' WHERE content = 'Held'"))
        db.session.execute(sa.text("DELETE FROM comments WHERE content = 'Number 2'"))
        db.session.commit()
    assert _agree(app)[post_id] == before + 1

    with app.app_context():  # a comment moved to another post is counted there
        other = Post(slug="another", title="Another", published_at=db.session.get(
            Post, post_id).published_at, body="<p>Another.</p>")
        db.session.add(other)
        db.session.flush()
        db.session.execute(sa.update(Comment).where(Comment.content == "Held")
                           .values(post_id=other.id))
        db.session.commit()
        other_id = other.id
    counts = _agree(app)
    assert (counts[post_id], counts[other_id]) == (before, 1)
