"""Resilience (issue 7, points 6–7): posters and live readers across gunicorn workers.

The campaign: concurrent posters (the JSON API, limits lifted) on the article and on fresh posts
that have no comment yet — several posters making each fresh post's first comment at once — while
SSE readers, spread over the workers, hold the posts' live streams. Afterwards, exact accounting:
every accepted comment stored exactly once, nothing stored that was not accepted (unless its
answer was lost to a fault), every reader received every comment of its post (comment ids in
`comment.created` events against the database), and no 5xx.

The short version runs in the default suite; the 30-second campaign and the faults that restart
shared services are in tests/test_resilience_soak.py (`make soak`).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from app.extensions import db
from app.models import Comment, CommentStatus, Post
from tests.conftest import make_app, reset_database
from tests.test_comments import configure

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
ARTICLE = "pakistan-russia-agree-to-bury-the-hatchet"


# --- the site under test: gunicorn + gevent, several workers ---------------------------------

@dataclass
class Site:
    process: subprocess.Popen
    url: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return sorted(int(p) for p in path.read_text().split()) if path.exists() else []

    def worker_serving(self, client_port: int) -> int | None:
        """The worker holding the server side of the connection from *client_port* (via /proc)."""
        inode = _server_socket_inode(self.port, client_port)
        if inode is None:
            return None
        for pid in self.worker_pids():
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
            except OSError:
                continue
        return None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            if (int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port):
                return inode
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn_site(database_url: str, workers: int, tmp_path: Path, *, redis_url: str | None = None,
                  redis_prefix: str = "", **extra_env: str):
    """Parley under `gunicorn -k gevent -w N` on a free port; stopped (the whole group) after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "REDIS_"))}
    env.update({
        "DATABASE_URL": database_url, "SECRET_KEY": "resilience-secret", "FLASK_APP": "app",
        "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
        "LIVE_HEARTBEAT_SECONDS": "1", "LIVE_POLL_SECONDS": "2",
    })
    if redis_url:
        env.update({"REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix})
    env.update(extra_env)
    port = free_port()
    log = tmp_path / f"gunicorn-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(GUNICORN), "app:create_app()", "-k", "gevent", "-w", str(workers),
             "-b", f"127.0.0.1:{port}", "--no-control-socket", "--graceful-timeout", "2",
             "--timeout", "60"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    site = Site(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 40
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {site.log_tail()}")
            try:
                if requests.get(site.url + "/healthz", timeout=2).status_code == 200 and len(
                        site.worker_pids()) == workers:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"gunicorn did not come up: {site.log_tail()}")
            time.sleep(0.2)
        yield site
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def prepare_database(database_url: str, fresh_posts: int) -> list[str]:
    """The article plus *fresh_posts* posts with no comment yet; comments published at once."""
    app = make_app(database_url)
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
        for i in range(fresh_posts):
            db.session.add(Post(slug=f"fresh-{i}", title=f"Fresh post {i}",
                                published_at=datetime(2011, 1, 20, 12, tzinfo=UTC),
                                body=f"<p>Nobody has commented on post {i} yet.</p>"))
        db.session.commit()
    configure(app, comment_moderation="nobody", comment_flood_seconds=0, moderation_notify=False)
    with app.app_context():
        db.engine.dispose()
    return [ARTICLE] + [f"fresh-{i}" for i in range(fresh_posts)]


# --- live readers that reconnect with Last-Event-ID, as a browser's EventSource does ----------

class LiveReader(threading.Thread):
    """Hold /api/posts/<slug>/live; on a dropped connection, reconnect with the last id seen."""

    def __init__(self, base_url: str, slug: str, *, reconnect: bool = True) -> None:
        super().__init__(daemon=True)
        self.base_url, self.slug, self.reconnect = base_url, slug, reconnect
        self.created: list[int] = []  # comment ids of comment.created events, in arrival order
        self.event_ids: list[int] = []
        self.counts: list[int] = []
        self.connections: list[int] = []  # the client port of each connection made
        self.failed_connects: Counter = Counter()
        self.disconnects: list[float] = []
        self.last_event_id: int | None = None
        self.connected = threading.Event()
        self._halt = threading.Event()
        self._sock: socket.socket | None = None
        self.start()
        if not self.connected.wait(15):
            raise TimeoutError(f"reader of {slug} never connected: {dict(self.failed_connects)}")

    @property
    def port(self) -> int:
        return self.connections[-1]

    def run(self) -> None:
        parts = urlsplit(self.base_url)
        while not self._halt.is_set():
            try:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
                headers = {"Accept": "text/event-stream"}
                if self.last_event_id is not None:
                    headers["Last-Event-ID"] = str(self.last_event_id)
                conn.request("GET", f"/api/posts/{self.slug}/live", headers=headers)
                self._sock = conn.sock
                port = conn.sock.getsockname()[1]
                response = conn.getresponse()
                if response.status != 200:
                    self.failed_connects[response.status] += 1
                    response.read()
                    conn.close()
                    time.sleep(0.3)
                    continue
                self.connections.append(port)
                self.connected.set()
                self._read(response)
                conn.close()
            except (OSError, http.client.HTTPException) as exc:
                if self._halt.is_set():
                    break
                self.failed_connects[type(exc).__name__] += 1
            if self._halt.is_set() or not self.reconnect:
                break
            self.disconnects.append(time.monotonic())
            time.sleep(0.2)

    def _read(self, response) -> None:
        block: dict[str, str] = {}
        while not self._halt.is_set():
            # The response's own readline decodes the chunked framing (the raw socket's would
            # return a chunk's size lines, and a chunk a proxy splits mid-line as two lines).
            raw = response.readline()
            if not raw:
                return
            line = raw.decode("utf-8").rstrip("\n")
            if line == "":
                if "id" in block:
                    event_id = int(block["id"])
                    self.event_ids.append(event_id)
                    data = json.loads(block.get("data", "null"))
                    if block.get("event") == "comment.created":
                        self.created.append(data["id"])
                    elif block.get("event") == "count":
                        self.counts.append(data["count"])
                    self.last_event_id = event_id
                block = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                block[name] = value[1:] if value.startswith(" ") else value

    def close(self) -> None:
        self._halt.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.join(5)


def open_readers(site: Site, slugs: list[str], per_post: int, article_readers: int) -> dict:
    """Readers for every post, spread over the workers (checked through /proc)."""
    readers: dict[str, list[LiveReader]] = {}
    for slug in slugs:
        wanted = article_readers if slug == ARTICLE else per_post
        readers[slug] = [LiveReader(site.url, slug) for _ in range(wanted)]
    workers = set(site.worker_pids())
    # Make sure the article has readers on every worker: open more until it does (bounded).
    for _ in range(40):
        on = {site.worker_serving(r.port) for r in readers[ARTICLE]}
        if workers <= on:
            break
        readers[ARTICLE].append(LiveReader(site.url, ARTICLE))
    return readers


def reader_workers(site: Site, readers: dict) -> Counter:
    return Counter(site.worker_serving(r.port) for rs in readers.values() for r in rs)


# --- posters ----------------------------------------------------------------------------------

@dataclass
class Campaign:
    tag: str
    accepted: dict[int, str] = field(default_factory=dict)  # comment id → slug
    statuses: Counter = field(default_factory=Counter)
    timeline: list[tuple[float, int | str]] = field(default_factory=list)  # (time, status)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ambiguous(self) -> int:
        """Requests whose answer was lost (the connection broke): stored or not, nobody knows."""
        return sum(n for status, n in self.statuses.items() if isinstance(status, str))

    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items()
                   if isinstance(status, int) and status >= 500)


def run_posters(site: Site, slugs: list[str], posters: int, seconds: float, *,
                max_per_poster: int = 2000, rounds: int = 3, campaign: Campaign | None = None,
                allowed_5xx: tuple[int, ...] = ()) -> Campaign:
    """*posters* threads posting for *seconds*; their first *rounds* comments land, two posters at
    a time, on fresh posts that have none yet, the first round released by one barrier."""
    campaign = campaign or Campaign(uuid.uuid4().hex[:8])
    fresh = [s for s in slugs if s != ARTICLE]
    group = max(1, posters // 2)
    barrier = threading.Barrier(posters, timeout=60)
    deadline = time.monotonic() + seconds

    def poster(p: int) -> None:
        rng = random.Random(p)
        session = requests.Session()
        token = None
        for _ in range(50):
            try:
                token = session.get(site.url + "/api/session", timeout=10).json()["csrf_token"]
                break
            except (requests.RequestException, ValueError):
                time.sleep(0.2)
        barrier.wait()
        n = 0
        while time.monotonic() < deadline and n < max_per_poster:
            index = n * group + p % group
            if n < rounds and index < len(fresh):
                slug = fresh[index]
            else:
                slug = ARTICLE if rng.random() < 0.5 else rng.choice(slugs)
            n += 1
            body = {"comment": f"Load {campaign.tag} p{p} n{n}", "author": f"Poster {p}",
                    "email": f"poster{p}@load.example.com"}
            if slug == ARTICLE and n % 5 == 0:
                body["comment_parent"] = 1  # a reply to the article's seeded comment
            status: int | str
            try:
                response = session.post(f"{site.url}/api/posts/{slug}/comments", json=body,
                                        headers={"X-CSRFToken": token or ""}, timeout=30)
                status = response.status_code
                comment_id = response.json()["comment"]["id"] if status == 201 else None
            except requests.RequestException as exc:
                status, comment_id = type(exc).__name__, None
            with campaign.lock:
                campaign.sent += 1
                campaign.statuses[status] += 1
                campaign.timeline.append((time.monotonic(), status))
                if comment_id is not None:
                    assert comment_id not in campaign.accepted, "one id answered twice"
                    campaign.accepted[comment_id] = slug
            if status in allowed_5xx:
                time.sleep(0.1)  # an outage: do not spin

    threads = [threading.Thread(target=poster, args=(p,), daemon=True) for p in range(posters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    return campaign


# --- accounting -------------------------------------------------------------------------------

def stored_comments(database_url: str, tag: str) -> list[tuple[int, str, str, str]]:
    """(id, slug, status, text) of every comment the campaign *tag* stored."""
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Comment.id, Post.slug, Comment.status, Comment.content)
            .join(Post, Post.id == Comment.post_id)
            .where(Comment.content.like(f"Load {tag} %"))).all()
    engine.dispose()
    return [(r[0], r[1], r[2].value if isinstance(r[2], CommentStatus) else r[2], r[3])
            for r in rows]


def wait_for_delivery(readers: dict, expected: dict[str, set[int]], timeout: float) -> float:
    """Wait until every reader holds its post's expected ids; return how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(expected.get(slug, set()) <= set(r.created) for slug, rs in readers.items()
               for r in rs):
            break
        time.sleep(0.1)
    return time.monotonic() - started


def account(database_url: str, campaign: Campaign, readers: dict, *, timeout: float = 20,
            lost_answers_ok: bool = False) -> dict:
    """Compare what was accepted, stored and delivered; return the figures (and assert them)."""
    rows = stored_comments(database_url, campaign.tag)
    stored_ids = [r[0] for r in rows]
    texts = [r[3] for r in rows]
    expected: dict[str, set[int]] = {}
    for comment_id, slug, status, _ in rows:
        if status == "approved":
            expected.setdefault(slug, set()).add(comment_id)
    waited = wait_for_delivery(readers, expected, timeout)
    problems = []
    if len(texts) != len(set(texts)) or len(stored_ids) != len(set(stored_ids)):
        problems.append("a comment was stored twice")
    missing = set(campaign.accepted) - set(stored_ids)
    if missing:
        problems.append(f"accepted but not stored: {sorted(missing)[:10]}")
    unaccepted = set(stored_ids) - set(campaign.accepted)
    if len(unaccepted) > (campaign.ambiguous if lost_answers_ok else 0):
        problems.append(f"stored but never accepted: {len(unaccepted)} "
                        f"(answers lost: {campaign.ambiguous})")
    wrong_post = [i for i, slug, _, _ in rows if i in campaign.accepted
                  and campaign.accepted[i] != slug]
    if wrong_post:
        problems.append(f"stored on the wrong post: {wrong_post[:10]}")
    delivered = 0
    for slug, rs in readers.items():
        for r in rs:
            got = set(r.created)
            if got != expected.get(slug, set()):
                problems.append(f"reader of {slug} on port {r.port}: missing "
                                f"{sorted(expected.get(slug, set()) - got)[:10]}, extra "
                                f"{sorted(got - expected.get(slug, set()))[:10]}")
            if len(r.created) != len(got):
                problems.append(f"reader of {slug}: the same comment delivered twice")
            if r.event_ids != sorted(set(r.event_ids)):
                problems.append(f"reader of {slug}: event ids out of order or repeated")
            delivered += len(r.created)
    figures = {
        "sent": campaign.sent, "accepted": len(campaign.accepted), "stored": len(stored_ids),
        "statuses": dict(campaign.statuses), "5xx": campaign.server_errors(),
        "readers": sum(len(rs) for rs in readers.values()), "events_delivered": delivered,
        "delivery_settled_s": round(waited, 2),
        "reconnects": sum(len(r.connections) - 1 for rs in readers.values() for r in rs),
    }
    print(f"\n[{campaign.tag}] {json.dumps(figures)}")
    assert not problems, f"{figures}\n" + "\n".join(problems[:30])
    return figures


def close_all(readers: dict) -> None:
    for rs in readers.values():
        for r in rs:
            r._halt.set()
    for rs in readers.values():
        for r in rs:
            r.close()


# --- the default suite: short campaign, and a worker killed mid-stream -----------------------

def test_short_load_every_comment_stored_once_and_delivered_to_every_reader(
        database_url, redis_url, redis_prefix, tmp_path):
    """8 posters × 5 s, 2 gevent workers sharing live events through Redis."""
    slugs = prepare_database(database_url, fresh_posts=12)
    with gunicorn_site(database_url, 2, tmp_path, redis_url=redis_url,
                       redis_prefix=redis_prefix) as site:
        readers = open_readers(site, slugs, per_post=2, article_readers=4)
        try:
            spread = reader_workers(site, readers)
            assert set(site.worker_pids()) <= set(spread), spread  # readers on every worker
            campaign = run_posters(site, slugs, posters=8, seconds=5, rounds=3)
            figures = account(database_url, campaign, readers)
        finally:
            close_all(readers)
    assert figures["5xx"] == 0 and set(campaign.statuses) == {201}, campaign.statuses
    assert figures["accepted"] >= 20
    # every fresh post got its first comments, two posters racing for each
    assert {slug for slug in campaign.accepted.values()} >= set(slugs[1:13])


def kill_worker_while_streaming(database_url: str, tmp_path: Path, *, workers: int, posters: int,
                                seconds: float, redis_url: str | None = None,
                                redis_prefix: str = "") -> dict:
    """SIGKILL a worker holding readers, mid-campaign; they reconnect with Last-Event-ID."""
    slugs = prepare_database(database_url, fresh_posts=4)
    extra = {} if redis_url else {"LIVE_POLL_SECONDS": "0.5"}
    with gunicorn_site(database_url, workers, tmp_path, redis_url=redis_url,
                       redis_prefix=redis_prefix, **extra) as site:
        readers = open_readers(site, slugs, per_post=2, article_readers=4)
        try:
            victim = site.worker_serving(readers[ARTICLE][0].port)
            assert victim is not None
            on_victim = [r for rs in readers.values() for r in rs
                         if site.worker_serving(r.port) == victim]
            killer = threading.Timer(seconds / 2, os.kill, (victim, signal.SIGKILL))
            killed_at = time.monotonic() + seconds / 2
            killer.start()
            campaign = run_posters(site, slugs, posters=posters, seconds=seconds, rounds=2)
            killer.join()
            figures = account(database_url, campaign, readers, lost_answers_ok=True)
            reconnected = [r for r in on_victim if len(r.connections) > 1]
            assert reconnected == on_victim, "every reader of the killed worker reconnected"
            figures["readers_on_killed_worker"] = len(on_victim)
            figures["reconnect_s"] = round(max(
                r.disconnects[0] for r in on_victim) - killed_at + 0.2, 2)
            assert victim not in site.worker_pids()  # gunicorn replaced it
        finally:
            close_all(readers)
    assert figures["5xx"] == 0, campaign.statuses
    return figures


def test_a_worker_killed_mid_stream_loses_no_event(database_url, tmp_path):
    """2 workers, no Redis (workers poll the event log): readers of the killed worker reconnect
    with Last-Event-ID and miss nothing; posters see at most a broken connection."""
    figures = kill_worker_while_streaming(database_url, tmp_path, workers=2, posters=6, seconds=6)
    assert figures["readers_on_killed_worker"] >= 1


# --- the database going away just after a comment's commit ---------------------------------

@contextmanager
def database_gone_after_the_next_commit(app):
    """Every statement after the next commit fails as if the database had just gone away (what
    the PostgreSQL restart in `make soak` does to a request that has just committed)."""
    from sqlalchemy.orm import Session

    caller = threading.get_ident()  # the test client runs the request on this thread
    state = {"committed": False}

    def committed(session) -> None:
        if threading.get_ident() == caller:
            state["committed"] = True

    def refuse(conn, cursor, statement, *args):
        if state["committed"] and threading.get_ident() == caller:
            raise sa.exc.OperationalError(statement, {}, Exception("server closed the connection"))

    with app.app_context():
        engine = db.engine
    sa.event.listen(Session, "after_commit", committed)
    sa.event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", refuse)
        sa.event.remove(Session, "after_commit", committed)


@pytest.mark.parametrize("with_parent", [False, True])
def test_a_stored_comment_is_never_answered_with_an_error(app, client, with_parent):
    from app.mail import get_mailer
    from tests.test_comments import FORM, GUEST, ORIGIN, api_post, csrf_token

    configure(app, comment_moderation="nobody", comment_flood_seconds=0, page_comments=True,
              comments_per_page=2)
    parent = {"comment_parent": 1} if with_parent else {}
    token = csrf_token(client)
    with database_gone_after_the_next_commit(app):
        by_api = api_post(client, {**GUEST, "comment": "Stored, then the database went.", **parent},
                          token=token)
    assert by_api.status_code == 201, by_api.get_json()
    assert "Stored, then the database went." in by_api.get_json()["comment"]["html"]
    get_mailer(app).join()  # the first comment's mail job commits on its own thread
    with database_gone_after_the_next_commit(app):
        by_form = client.post(FORM, data={**GUEST, "comment": "And once more by the form.",
                                          **parent}, headers=ORIGIN)
    assert by_form.status_code == 303 and "#comment-" in by_form.headers["Location"]
    with app.app_context():
        texts = set(db.session.scalars(sa.select(Comment.content)))
    assert {"Stored, then the database went.", "And once more by the form."} <= texts
