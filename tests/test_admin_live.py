"""The live moderation queue over a real socket: held comments and counts arrive without a reload."""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import contextmanager

import pytest
import requests
import sqlalchemy as sa

from app.commands import seed_article
from app.comments import service
from app.extensions import db
from app.live import QUEUE, get_hub
from app.mail import get_mailer
from app.models import Comment, CommentStatus, Post
from app.settings import set_setting
from tests.conftest import make_app, reset_database
from tests.servers import LiveServer, SSEReader
from tests.test_admin_helpers import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin


class Stream:
    """Read an admin text/event-stream with a signed-in requests session, in a thread."""

    def __init__(self, session: requests.Session, url: str, last_event_id: int | None = None):
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = session.get(url, headers=headers, stream=True, timeout=30)
        self.events: list[tuple[str, dict]] = []
        self.comments: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        kind, data = "message", ""
        try:
            for raw in self.response.iter_lines(decode_unicode=True):
                if raw == "":
                    if data:
                        self.events.append((kind, json.loads(data)))
                    kind, data = "message", ""
                elif raw.startswith(":"):
                    self.comments.append(raw[1:].strip())
                elif raw.startswith("event:"):
                    kind = raw[6:].strip()
                elif raw.startswith("data:"):
                    data = raw[5:].strip()
        except (requests.RequestException, AttributeError, ValueError):
            pass

    def wait_for(self, predicate, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for kind, data in list(self.events):
                if predicate(kind, data):
                    return kind, data
            time.sleep(0.02)
        raise AssertionError(f"no matching event in {self.events!r}")

    def close(self) -> None:
        self.response.close()


@contextmanager
def serve(database_url: str, **config):
    app = make_app(database_url, **{"ADMIN_LIVE_POLL_SECONDS": 0.2, "LIVE_HEARTBEAT_SECONDS": 0.5,
                                    **config})
    reset_database(app)
    with app.app_context():
        seed_article()
        set_setting("comment_flood_seconds", 0)
        db.session.commit()
    make_admin(app)
    with LiveServer(app) as server:
        yield app, server
    get_mailer(app).join()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def served(database_url):
    with serve(database_url) as served:
        yield served


def admin_session(server) -> requests.Session:
    session = requests.Session()
    page = session.get(server.url + "/admin/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = session.post(server.url + "/admin/login", allow_redirects=False, data={
        "csrf_token": token, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 303
    return session


def submit(app, text: str, ip: str = "198.51.100.7") -> int:
    with app.app_context():
        post = db.session.scalar(sa.select(Post))
        comment = service.submit(post, {"comment": text, "author": "Hina",
                                        "email": "hina@example.com"}, ip=ip,
                                 user_agent="Firefox").comment
        db.session.commit()
        return comment.id


def test_a_new_held_comment_reaches_an_open_queue_with_the_counts(served):
    app, server = served
    stream = Stream(admin_session(server), server.url + "/admin/live")
    try:
        stream.wait_for(lambda k, d: k == "counts" and d["pending"] == 0)
        comment_id = submit(app, "Held, and shown to the moderator live.")
        started = time.monotonic()
        _, held = stream.wait_for(lambda k, d: k == "comment.held" and d["id"] == comment_id)
        assert time.monotonic() - started < 2
        assert held["status"] == "pending"
        assert "Held, and shown to the moderator live." in held["html"]
        assert "hina@example.com" in held["html"] and "198.51.100.7" in held["html"]
        assert 'name="csrf_token" value=""' in held["html"]  # filled in by the page's own token
        stream.wait_for(lambda k, d: k == "counts" and d["pending"] == 1 and d["all"] == 2)
        assert "connected to the moderation queue" in stream.comments
        deadline = time.monotonic() + 2  # the hub's heartbeat pass beats admin readers too
        while "heartbeat" not in stream.comments and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "heartbeat" in stream.comments
    finally:
        stream.close()


def test_news_of_a_change_reaches_open_queues_without_waiting_for_the_poll(database_url):
    with serve(database_url, ADMIN_LIVE_POLL_SECONDS=60) as (app, server):
        stream = Stream(admin_session(server), server.url + "/admin/live")
        try:
            stream.wait_for(lambda k, d: k == "counts")
            comment_id = submit(app, "Told at once.")  # the gate calls live.queue_changed()
            started = time.monotonic()
            stream.wait_for(lambda k, d: k == "comment.held" and d["id"] == comment_id,
                            timeout=5)
            assert time.monotonic() - started < 2  # a poll would have taken a minute
        finally:
            stream.close()


def test_the_public_stream_never_carries_the_queue(served):
    """One hub holds both channels; held comments, emails and IPs reach only /admin/."""
    app, server = served
    with app.app_context():
        post = db.session.scalar(sa.select(Post))
        post_id, slug = post.id, post.slug
    public = SSEReader(f"{server.url}/api/posts/{slug}/live")
    stream = Stream(admin_session(server), server.url + "/admin/live")
    try:
        stream.wait_for(lambda k, d: k == "counts")
        hub = get_hub(app)
        assert hub.channel(QUEUE) is not None and hub.channel(str(post_id)) is not None
        assert hub.count() == 2
        comment_id = submit(app, "Only moderators see me.", ip="198.51.100.9")
        stream.wait_for(lambda k, d: k == "comment.held" and d["id"] == comment_id)
        with app.app_context():  # approved: now the public hear of it, without the private parts
            service.set_status(db.session.get(Comment, comment_id), CommentStatus.APPROVED)
            db.session.commit()
        stream.wait_for(lambda k, d: k == "comment.changed" and d["id"] == comment_id
                        and d["status"] == "approved")
        time.sleep(0.6)  # several polls of both channels
        assert [e.event for e in public.events] == ["comment.created", "count"]
        assert public.events[0].json["id"] == comment_id
        for event in public.events:
            assert "hina@example.com" not in event.data and "198.51.100.9" not in event.data
    finally:
        public.close()
        stream.close()


def test_a_moderation_elsewhere_moves_the_row_and_the_counts(served):
    app, server = served
    comment_id = submit(app, "Approve me elsewhere.")
    session = admin_session(server)
    stream = Stream(session, server.url + "/admin/live")
    try:
        stream.wait_for(lambda k, d: k == "counts" and d["pending"] == 1)
        page = session.get(server.url + "/admin/").text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        session.post(f"{server.url}/admin/comments/{comment_id}/approve",
                     data={"csrf_token": token})
        stream.wait_for(lambda k, d: k == "comment.changed" and d["id"] == comment_id
                        and d["status"] == "approved")
        stream.wait_for(lambda k, d: k == "counts" and d["pending"] == 0 and d["approved"] == 2)
    finally:
        stream.close()


def test_a_reconnect_gets_the_held_comments_it_missed(served):
    app, server = served
    first = submit(app, "Seen before the drop.")
    missed = submit(app, "Arrived while disconnected.", ip="198.51.100.8")
    stream = Stream(admin_session(server), server.url + "/admin/live", last_event_id=first)
    try:
        _, event = stream.wait_for(lambda k, d: k == "comment.held")
        assert event["id"] == missed
        assert [d["id"] for k, d in stream.events if k == "comment.held"] == [missed]
    finally:
        stream.close()


def test_one_poll_per_interval_however_many_admins_watch(served):
    app, server = served
    session = admin_session(server)
    streams = [Stream(session, server.url + "/admin/live") for _ in range(4)]
    try:
        for stream in streams:
            stream.wait_for(lambda k, d: k == "counts")
        channel = get_hub(app).channel(QUEUE)
        before, started = channel.reads, time.monotonic()
        time.sleep(1.0)
        polls = channel.reads - before
        expected = (time.monotonic() - started) / 0.2
        assert polls <= expected + 1, f"{polls} polls for 4 clients in ~{expected:.0f} intervals"
        comment_id = submit(app, "Everyone sees it.")
        for stream in streams:
            stream.wait_for(lambda k, d, cid=comment_id: k == "comment.held" and d["id"] == cid)
    finally:
        for stream in streams:
            stream.close()


def test_the_stream_ends_when_the_admin_session_does(database_url):
    app = make_app(database_url, ADMIN_LIVE_POLL_SECONDS=0.2, ADMIN_IDLE_TIMEOUT=1.5,
                   LIVE_HEARTBEAT_SECONDS=0.5)
    reset_database(app)
    with app.app_context():
        seed_article()
    make_admin(app)
    with LiveServer(app) as server:
        session = admin_session(server)
        stream = Stream(session, server.url + "/admin/live")
        try:
            stream.wait_for(lambda k, d: k == "expired", timeout=5)
        finally:
            stream.close()
        again = session.get(server.url + "/admin/live", allow_redirects=False)
        assert again.status_code == 302  # the page's EventSource stops; the moderator signs in
    with app.app_context():
        db.engine.dispose()


def test_strangers_get_no_admin_stream(served):
    _, server = served
    response = requests.get(server.url + "/admin/live", allow_redirects=False, timeout=10)
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
