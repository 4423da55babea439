"""Live updates over Server-Sent Events: format, fan-out, replay by Last-Event-ID, Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from app import live
from app.commands import seed_article
from app.comments import service
from app.extensions import db
from app.models import Comment, CommentStatus, Event, Post
from app.moderation.models import Actor
from tests.conftest import make_app, reset_database
from tests.servers import LiveServer, SSEReader
from tests.test_comments import API, GUEST, configure

ROOT = Path(__file__).resolve().parent.parent
LIVE = "/api/posts/pakistan-russia-agree-to-bury-the-hatchet/live"


def post_comment(base_url: str, text: str, session: requests.Session | None = None, **extra):
    session = session or requests.Session()
    token = session.get(f"{base_url}/api/session").json()["csrf_token"]
    response = session.post(f"{base_url}{API}", json={**GUEST, "comment": text, **extra},
                            headers={"X-CSRFToken": token})
    return response


@pytest.fixture
def live_app(database_url):
    app = make_app(database_url, LIVE_HEARTBEAT_SECONDS=0.5)
    reset_database(app)
    with app.app_context():
        seed_article()
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def server(live_app):
    with LiveServer(live_app) as server:
        yield server


def test_stream_headers_first_event_and_heartbeat(server):
    reader = SSEReader(server.url + LIVE)
    try:
        assert reader.status == 200
        assert reader.headers["Content-Type"].startswith("text/event-stream")
        assert reader.headers["Cache-Control"] == "no-cache"
        time.sleep(1.3)
        assert reader.comments[0].startswith("connected")
        assert "heartbeat" in reader.comments
    finally:
        reader.close()


def test_a_quiet_reader_hears_a_heartbeat_within_the_interval(live_app):
    """Never more than LIVE_HEARTBEAT_SECONDS without a byte (proxies close quiet connections)."""
    live_app.config["LIVE_HEARTBEAT_SECONDS"] = 1.0
    with LiveServer(live_app) as server:
        with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as sock:
            sock.sendall(f"GET {LIVE} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            sock.settimeout(5)
            arrivals, received = [], b""
            ended = time.monotonic() + 4
            while time.monotonic() < ended:
                received += sock.recv(65536)
                arrivals.append(time.monotonic())
    gaps = [b - a for a, b in zip(arrivals[1:], arrivals[2:], strict=False)]  # after the backlog
    assert received.count(b": heartbeat") >= 3
    assert max(gaps) <= 1.0 + 0.2, gaps


def test_a_new_comment_reaches_every_open_reader_with_ids_and_count(server):
    readers = [SSEReader(server.url + LIVE) for _ in range(3)]
    try:
        response = post_comment(server.url, "Live from Islamabad")
        assert response.status_code == 201
        for reader in readers:
            events = reader.wait_for(2)
            assert [e.event for e in events] == ["comment.created", "count"]
            created, count = events
            assert created.json["author"] == "Ayesha Khan"
            assert "Live from Islamabad" in created.json["html"]
            assert "ayesha@example.com" not in created.data  # emails never leave the server
            assert count.json == {"count": 2, "text": "2 comments"}
            assert created.id < count.id
    finally:
        for reader in readers:
            reader.close()


def test_held_comments_never_reach_the_public_stream(server, live_app):
    configure(live_app, comment_moderation="everyone")
    reader = SSEReader(server.url + LIVE)
    try:
        assert post_comment(server.url, "wait for me").status_code == 201
        time.sleep(0.8)
        assert reader.events == []
    finally:
        reader.close()


def test_reconnecting_with_last_event_id_replays_exactly_what_was_missed(server):
    first = SSEReader(server.url + LIVE)
    post_comment(server.url, "one")
    seen = first.wait_for(2)
    first.close()
    last_seen = seen[-1].id
    for text in ("two", "three"):  # posted while the reader is away
        assert post_comment(server.url, text).status_code == 201
    again = SSEReader(server.url + LIVE, last_event_id=last_seen)
    try:
        post_comment(server.url, "four")  # and one after it is back
        events = again.wait_for(6)
        assert [e.event for e in events] == ["comment.created", "count"] * 3
        texts = [e.json["content_html"] for e in events if e.event == "comment.created"]
        assert texts == ["<p>two</p>", "<p>three</p>", "<p>four</p>"]
        ids = [e.id for e in events]
        assert ids == sorted(set(ids)) and ids[0] > last_seen
    finally:
        again.close()


def test_replay_survives_a_server_restart(database_url, live_app):
    with LiveServer(live_app) as server:
        reader = SSEReader(server.url + LIVE)
        post_comment(server.url, "before the restart")
        last_seen = reader.wait_for(2)[-1].id
        reader.close()
    with live_app.app_context():  # a change made while no server runs
        comment = db.session.scalar(sa.select(Comment).where(Comment.content == "before the restart"))
        service.set_status(comment, CommentStatus.TRASH)
        db.session.commit()
    restarted = make_app(database_url, LIVE_HEARTBEAT_SECONDS=0.5)
    with LiveServer(restarted) as server:
        reader = SSEReader(server.url + LIVE, last_event_id=last_seen)
        try:
            events = reader.wait_for(2)
            assert [e.event for e in events] == ["comment.removed", "count"]
            assert events[1].json["count"] == 1
        finally:
            reader.close()
    with restarted.app_context():
        db.engine.dispose()


def test_edit_unapprove_and_delete_are_streamed(server, live_app):
    reader = SSEReader(server.url + LIVE)
    try:
        comment_id = post_comment(server.url, "first words").json()["comment"]["id"]
        with live_app.app_context():
            comment = db.session.get(Comment, comment_id)
            service.moderator_edit(comment, Actor(None, "a moderator"), content="better words",
                                   author=comment.author_name, email=comment.author_email,
                                   url=comment.author_url)
            db.session.commit()
            service.set_status(comment, CommentStatus.PENDING)
            db.session.commit()
            service.set_status(comment, CommentStatus.APPROVED)
            db.session.commit()
            service.delete(comment)
            db.session.commit()
        events = reader.wait_for(9)
        assert [e.event for e in events] == [
            "comment.created", "count", "comment.updated", "comment.removed", "count",
            "comment.created", "count", "comment.removed", "count"]
        assert "better words" in events[2].json["html"]
        assert [e.json["count"] for e in events if e.event == "count"] == [2, 1, 2, 1]
    finally:
        reader.close()


def test_command_line_approval_reaches_live_readers(server, live_app, database_url):
    configure(live_app, comment_moderation="everyone")
    comment_id = post_comment(server.url, "approve me from the shell").json()["comment"]["id"]
    reader = SSEReader(server.url + LIVE)
    try:
        # another process, with no broker in common: the server finds it in the event log
        env = {**os.environ, "DATABASE_URL": database_url, "FLASK_APP": "app",
               "SECRET_KEY": "cli", "REDIS_URL": ""}
        subprocess.run([sys.executable, "-m", "flask", "comments", "approve", str(comment_id)],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
        events = reader.wait_for(2, timeout=10)
        assert [e.event for e in events] == ["comment.created", "count"]
        assert events[0].json["id"] == comment_id
    finally:
        reader.close()


def test_events_are_written_in_the_same_transaction_as_the_change(live_app):
    with live_app.app_context():
        post = db.session.scalar(sa.select(Post))
        before = db.session.scalar(sa.select(sa.func.count(Event.id)))
        with pytest.raises(service.CommentRejected):
            service.submit(post, {"comment": "", **GUEST})
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count(Event.id))) == before
        comment = service.submit(post, {"comment": "counted", **GUEST}, ip="198.51.100.1").comment
        db.session.commit()
        kinds = db.session.scalars(sa.select(Event.kind).where(Event.id > 0).order_by(Event.id))
        assert list(kinds)[-2:] == ["comment.created", "count"]
        assert comment.status == CommentStatus.APPROVED


def test_news_is_published_once_per_channel_after_commit_and_never_after_rollback(live_app):
    heard: list[str | None] = []
    live.get_broker(live_app).start(heard.append)
    with live_app.app_context():
        post_id = db.session.scalar(sa.select(Post.id))
        live.record(post_id, "likes", {"count": 1})
        live.queue_changed()
        db.session.rollback()
        assert heard == []
        live.record(post_id, "likes", {"count": 1})
        live.record(post_id, "likes", {"count": 2})
        live.queue_changed()
        live.queue_changed()
        assert heard == []  # nothing before the commit
        db.session.commit()
        assert heard == [str(post_id), live.QUEUE]


def test_a_writer_holds_no_lock_on_its_post_until_it_commits(live_app):
    """A post's writers run side by side until COMMIT (on PostgreSQL the post's lock is taken
    there, by a trigger); each transaction's events are kept or dropped with it."""
    with live_app.app_context():
        post = db.session.scalar(sa.select(Post))
        postgres = db.engine.dialect.name == "postgresql"
        # the post's lock, or a write to its count row (which locks the row until the end)
        locks = sa.text("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND "
                        "(locktype = 'advisory' OR (relation = 'comment_counts'::regclass "
                        "AND mode <> 'AccessShareLock'))")
        for n, end in enumerate((db.session.rollback, db.session.commit, db.session.commit)):
            live.record(post.id, "likes", {"count": 1})
            service.submit(post, {"comment": f"number {n}", **GUEST}, ip="198.51.100.2")
            if postgres:
                assert db.session.scalar(locks) == 0
            end()
        kinds = db.session.scalars(sa.select(Event.kind).where(Event.post_id == post.id)
                                   .order_by(Event.id)).all()
        assert kinds[-6:] == ["likes", "comment.created", "count"] * 2
        assert kinds.count("likes") == 2


def test_bad_last_event_id_and_unknown_post(client):
    assert client.get(LIVE, headers={"Last-Event-ID": "x"}).status_code == 400
    response = client.get("/api/posts/nope/live")
    assert response.status_code == 404 and response.json["error"] == "not_found"


# --- several processes sharing Redis -----------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise TimeoutError(url)


@pytest.mark.redis
def test_two_gunicorn_processes_share_events_through_one_redis_subscription_each(
        redis_url, redis_prefix, database_url, tmp_path):
    import redis

    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "REDIS_PREFIX": redis_prefix, "SECRET_KEY": "shared-secret", "FLASK_APP": "app",
           "LIVE_POLL_SECONDS": "120",  # so delivery within seconds can only come through Redis
           "LIVE_HEARTBEAT_SECONDS": "1"}
    if database_url.startswith("sqlite"):
        subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=120)
    else:
        app = make_app(database_url)
        reset_database(app)
    subprocess.run([sys.executable, "-m", "flask", "seed"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=60)
    app = make_app(database_url)
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    processes, urls = [], []
    try:
        for _ in range(2):
            port = _free_port()
            processes.append(subprocess.Popen(
                [gunicorn, "app:create_app()", "-k", "gevent", "-w", "1", "-b", f"127.0.0.1:{port}",
                 "--no-control-socket"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            _wait_until_up(url, process)
        readers = [SSEReader(urls[1] + LIVE) for _ in range(3)]
        readers.append(SSEReader(urls[0] + LIVE))
        time.sleep(0.5)
        client = redis.Redis.from_url(redis_url)
        subscriptions = dict(client.pubsub_numsub(f"{redis_prefix}live"))
        assert subscriptions[f"{redis_prefix}live".encode()] == 2  # one per process, not per reader
        client.close()
        started = time.monotonic()
        assert post_comment(urls[0], "across processes").status_code == 201
        for reader in readers:
            events = reader.wait_for(2, timeout=5)
            assert [e.event for e in events] == ["comment.created", "count"]
            assert reader.arrivals[0] - started < 2.0
        for reader in readers:
            reader.close()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            if process.stderr:
                process.stderr.close()
        with app.app_context():
            db.engine.dispose()
