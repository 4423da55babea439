"""A busy post on PostgreSQL: writers who commit out of order, and readers who replay exactly.

Two posters write to the same post at once, each on a connection of its own, and the one who
wrote second (the later event ids, while both are open) commits first. Neither waits for the
other, and a reader who reconnects in between with Last-Event-ID gets every event exactly once,
in the order of the commits, each count being the post's count at its commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from app.commands import seed_article
from app.comments import service
from app.extensions import db
from app.models import CommentCount, Event, Post
from tests.conftest import make_app, reset_database
from tests.servers import LiveServer, SSEReader
from tests.test_comments import GUEST, configure
from tests.test_live import LIVE


@pytest.fixture
def pg_app(postgres_url):
    app = make_app(postgres_url, LIVE_HEARTBEAT_SECONDS=0.5)
    reset_database(app)
    with app.app_context():
        seed_article()
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    return app


@contextmanager
def poster(app) -> Iterator[None]:
    """A writer with a session (and so a connection) of its own: an app context of its own.

    It gives up after 3 s waiting for a lock: a writer queued behind another poster's open
    transaction is the fault this file is about, and must fail the test, not hang it.
    """
    with app.app_context():
        db.session.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
        yield


def _post_comment(text: str, after: int) -> list[int]:
    """Stage a published comment in the current session; the ids its events have so far (the
    session sees its own events and committed ones, and nobody else committed since *after*)."""
    post = db.session.scalar(sa.select(Post))
    service.submit(post, {"comment": text, **GUEST}, ip="198.51.100.7")
    db.session.flush()
    return list(db.session.scalars(
        sa.select(Event.id).where(Event.post_id == post.id, Event.id > after).order_by(Event.id)))


def _created(events) -> list[str]:
    return [e.json["content_html"] for e in events if e.event == "comment.created"]


def test_a_later_writer_commits_first_and_a_reconnecting_reader_misses_nothing(pg_app):
    with pg_app.app_context():
        post_id = db.session.scalar(sa.select(Post.id))
        start = Event.last_id(post_id)
        count_before = CommentCount.of(post_id)
    with LiveServer(pg_app) as server:
        reader = SSEReader(server.url + LIVE)
        try:
            with poster(pg_app):  # A writes first ...
                a_ids = _post_comment("written first, committed last", start)
                with poster(pg_app):  # ... B writes second and commits first, A still open
                    b_ids = _post_comment("written second, committed first", start)
                    assert a_ids and b_ids and max(a_ids) < min(b_ids)
                    db.session.commit()
                seen = reader.wait_for(2)
                assert [e.event for e in seen] == ["comment.created", "count"]
                assert _created(seen) == ["<p>written second, committed first</p>"]
                reader.close()  # the reader goes away and comes back before A commits
                reader = SSEReader(server.url + LIVE, last_event_id=seen[-1].id)
                db.session.commit()  # A commits
            again = reader.wait_for(2)
            assert [e.event for e in again] == ["comment.created", "count"]
            assert _created(again) == ["<p>written first, committed last</p>"]
            assert again[0].id > seen[-1].id  # later than everything the reader had
        finally:
            reader.close()
        # Everything since the start, replayed: both comments once each, in commit order, with
        # the count each commit left; and from the reconnection point, exactly A's two events.
        replay = SSEReader(server.url + LIVE, last_event_id=start)
        rest = SSEReader(server.url + LIVE, last_event_id=seen[-1].id)
        try:
            events = replay.wait_for(4)
            assert [e.event for e in events] == ["comment.created", "count"] * 2
            assert _created(events) == ["<p>written second, committed first</p>",
                                        "<p>written first, committed last</p>"]
            assert [e.json for e in events if e.event == "count"] == [
                {"count": count_before + 1, "text": f"{count_before + 1} comments"},
                {"count": count_before + 2, "text": f"{count_before + 2} comments"}]
            ids = [e.id for e in events]
            assert ids == sorted(set(ids)) and ids[0] > start
            assert [e.id for e in rest.wait_for(2)] == ids[2:]
        finally:
            replay.close()
            rest.close()
    assert len(replay.events) == 4 and len(rest.events) == 2  # and nothing more arrived
