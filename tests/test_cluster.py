"""Two hosts behind HAProxy (scripts/cluster, deploy/haproxy.cfg), as a reader and a poster see it.

Readers hold live streams through the balancer and posters write through it while one host is
SIGKILLed, and while both are restarted one at a time (`kill -HUP`): every accepted comment is
stored once and reaches every reader once, the readers reconnecting with Last-Event-ID as a
browser's EventSource does. The cluster stops whole on Ctrl-C or SIGTERM, and refuses to start
on SQLite or without Redis.

These run in the default suite (about 45 s) and skip, loudly, without HAProxy (scripts/test
installs Debian's package when it can) or without TEST_DATABASE_URL / TEST_REDIS_URL. Each
cluster gets a PostgreSQL database and a Redis prefix of its own, removed afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
import requests
import sqlalchemy as sa

from app.extensions import db
from app.models import Comment, Post
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, make_app
from tests.test_comments import configure
from tests.test_resilience import (
    ARTICLE,
    Campaign,
    LiveReader,
    account,
    close_all,
    free_port,
    run_posters,
)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "cluster"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
needs_haproxy = pytest.mark.skipif(
    not os.access(HAPROXY, os.X_OK),
    reason="cluster tests skip: HAProxy is not installed (scripts/test installs Debian's "
           "haproxy when it runs as root with apt-get)")


# --- the cluster under test --------------------------------------------------------------------

@dataclass
class Cluster:
    process: subprocess.Popen
    url: str
    ports: dict[str, int]
    log: Path
    socket: str = ""
    database_url: str = ""
    slugs: list[str] = field(default_factory=list)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def descendants(self) -> set[int]:
        """Every process below the script (hosts, their workers, HAProxy, the log prefixers)."""
        found, todo = set(), [self.process.pid]
        while todo:
            pid = todo.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.add(child)
                todo.append(child)
        return found

    def host_pids(self, name: str) -> list[int]:
        """Host *name*'s gunicorn master and its workers."""
        bind = f"127.0.0.1:{self.ports[name]}".encode()
        pids = []
        for pid in self.descendants():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"gunicorn" in cmdline and bind in cmdline:
                pids.append(pid)
        return sorted(pids)

    def api(self, command: str) -> str:
        """One command to HAProxy's runtime API."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.socket)
            s.sendall(command.encode() + b"\n")
            return b"".join(iter(lambda: s.recv(65536), b"")).decode()

    def servers(self, backend: str = "hosts") -> dict[str, dict[str, str]]:
        """HAProxy's view of each host in *backend* ("hosts", or "streams" for the live
        streams): status (UP, DOWN, ...), current connections (scur) ..."""
        lines = self.api("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {r["svname"]: r for r in rows if r["pxname"] == backend and r["svname"] in "ab"}

    def wait_for(self, text: str, timeout: float, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_text()[after:]:
            if self.process.poll() is not None:
                raise RuntimeError(f"scripts/cluster exited:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {text!r} within {timeout} s:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, *, group: bool = False) -> int:
        if self.process.poll() is None:
            if group:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)
        return self.process.wait(30)


def cluster_env(database_url: str, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLASK_", "REDIS_", "PARLEY_", "GUNICORN_"))}
    env.update({
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "REDIS_PREFIX": prefix,
        "SECRET_KEY": "cluster-secret", "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
        "LIVE_HEARTBEAT_SECONDS": "1", "LIVE_POLL_SECONDS": "2",
        # every reader here comes from 127.0.0.1: no per-address cap on streams
        "LIVE_MAX_STREAMS_PER_IP": "0",
        "WORKERS": "1", "GUNICORN_CMD_ARGS": "--graceful-timeout 1",
        "PORT": str(free_port()), "HOST_A_PORT": str(free_port()), "HOST_B_PORT": str(free_port()),
    })
    env.update(extra)
    return env


@contextmanager
def running_cluster(env: dict[str, str], log: Path):
    """scripts/cluster in its own session; stopped, and its whole group killed, whatever happens."""
    with open(log, "wb") as out:
        process = subprocess.Popen([str(SCRIPT)], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    ports = {"a": int(env["HOST_A_PORT"]), "b": int(env["HOST_B_PORT"])}
    cluster = Cluster(process, f"http://127.0.0.1:{env['PORT']}", ports, log,
                      database_url=env["DATABASE_URL"])
    try:
        cluster.wait_for("Parley is serving", 90)
        cluster.socket = re.search(r"runtime API: (\S+)\)", cluster.log_text()).group(1)
        yield cluster
    finally:
        try:
            cluster.stop()
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever was left behind
        except ProcessLookupError:
            pass


@contextmanager
def throwaway_database():
    """A PostgreSQL database of its own (the suite's shared one has create_all's schema, and
    scripts/cluster migrates); dropped afterwards."""
    base = sa.make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg")
    name = f"parley_cluster_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def redis_keys_removed(prefix: str):
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(TEST_REDIS_URL)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


def services() -> None:
    if not TEST_DATABASE_URL or not TEST_REDIS_URL:
        pytest.skip("cluster tests skip: they need TEST_DATABASE_URL and TEST_REDIS_URL")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the module: the article, four posts with no comment yet, comments
    published at once and no flood limit."""
    services()
    if not os.access(HAPROXY, os.X_OK):
        pytest.skip("cluster tests skip: HAProxy is not installed")
    prefix = f"parley-cluster-{uuid.uuid4().hex[:8]}:"
    log = tmp_path_factory.mktemp("cluster") / "cluster.log"
    with throwaway_database() as url, redis_keys_removed(prefix), running_cluster(
            cluster_env(url, TEST_REDIS_URL, prefix), log) as running:
        app = make_app(url)
        with app.app_context():
            for i in range(4):
                db.session.add(Post(slug=f"fresh-{i}", title=f"Fresh post {i}",
                                    published_at=datetime(2011, 1, 20, 12, tzinfo=UTC),
                                    body=f"<p>Nobody has commented on post {i} yet.</p>"))
            db.session.commit()
        configure(app, comment_moderation="nobody", comment_flood_seconds=0,
                  moderation_notify=False)
        running.slugs = [ARTICLE] + [f"fresh-{i}" for i in range(4)]
        yield running


def open_readers(cluster: Cluster) -> dict[str, list[LiveReader]]:
    """Two readers per post and six on the article, all through the balancer."""
    return {slug: [LiveReader(cluster.url, slug) for _ in range(6 if slug == ARTICLE else 2)]
            for slug in cluster.slugs}


def settle_spread(cluster: Cluster, readers: int) -> dict[str, int]:
    """Wait until HAProxy counts every reader's stream on a host; return streams per host."""
    deadline = time.monotonic() + 10
    while True:
        spread = {name: int(row["scur"]) for name, row in cluster.servers("streams").items()}
        if sum(spread.values()) >= readers or time.monotonic() > deadline:
            return spread
        time.sleep(0.1)


def post_until(url: str, slugs: list[str], stop: threading.Event,
               posters: int = 6) -> tuple[Campaign, list[threading.Thread]]:
    """*posters* threads posting to *url*, half on the first post, the rest spread over the
    others, until *stop* is set."""
    campaign = Campaign(uuid.uuid4().hex[:8])

    def poster(p: int) -> None:
        session = requests.Session()
        token = session.get(url + "/api/session", timeout=10).json()["csrf_token"]
        n = 0
        while not stop.is_set():
            n += 1
            slug = slugs[0] if n % 2 or len(slugs) == 1 else slugs[1 + (p + n) % (len(slugs) - 1)]
            status: int | str
            try:
                answer = session.post(
                    f"{url}/api/posts/{slug}/comments", timeout=30,
                    json={"comment": f"Load {campaign.tag} p{p} n{n}", "author": f"Poster {p}",
                          "email": f"poster{p}@load.example.com"}, headers={"X-CSRFToken": token})
                status = answer.status_code
                comment_id = answer.json()["comment"]["id"] if status == 201 else None
            except requests.RequestException as exc:
                status, comment_id = type(exc).__name__, None
            with campaign.lock:
                campaign.sent += 1
                campaign.statuses[status] += 1
                campaign.timeline.append((time.monotonic(), status))
                if comment_id is not None:
                    campaign.accepted[comment_id] = slug

    threads = [threading.Thread(target=poster, args=(p,), daemon=True) for p in range(posters)]
    for t in threads:
        t.start()
    return campaign, threads


def balancer_errors_as_lost_answers(campaign, window: tuple[float, float]) -> int:
    """A post that was on its way to the killed host when it died gets HAProxy's 502: its answer
    is lost (stored or not, the poster cannot know). Only allowed around the kill."""
    lost = [(t, s) for t, s in campaign.timeline if s in (502, 503, 504)]
    outside = [(t, s) for t, s in lost if not window[0] <= t <= window[1]]
    assert not outside, f"5xx away from the kill: {outside}"
    for status in (502, 503, 504):
        if status in campaign.statuses:
            campaign.statuses[f"{status} from the balancer"] = campaign.statuses.pop(status)
    return len(lost)


# --- tests ---------------------------------------------------------------------------------------

@needs_haproxy
def test_the_config_an_operator_copies_is_valid():
    """deploy/haproxy.cfg as it stands, with none of scripts/cluster's variables set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    result = subprocess.run([HAPROXY, "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize("database_url, redis_url, message", [
    (None, "redis://127.0.0.1:6379/0", "DATABASE_URL is not set"),
    ("sqlite:///instance/parley.db", "redis://127.0.0.1:6379/0", "DATABASE_URL is SQLite"),
    ("postgresql+psycopg://parley@127.0.0.1/parley", None, "REDIS_URL is not set"),
    ("postgresql+psycopg://parley@127.0.0.1/parley", "127.0.0.1:6379", "is not a Redis URL"),
])
def test_it_refuses_what_two_hosts_cannot_share(database_url, redis_url, message):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({k: v for k, v in (("DATABASE_URL", database_url), ("REDIS_URL", redis_url)) if v})
    result = subprocess.run([str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


@needs_haproxy
def test_a_stream_through_the_balancer_is_neither_buffered_nor_compressed(cluster):
    """The first event arrives at once, uncompressed though the reader accepts gzip; a comment
    posted through the balancer arrives within a second; the reader's address is HAProxy's
    X-Forwarded-For (PROXY_COUNT=1), not what the reader claimed."""
    slug = cluster.slugs[1]
    conn = http.client.HTTPConnection("127.0.0.1", int(cluster.url.rsplit(":", 1)[1]), timeout=5)
    started = time.monotonic()
    conn.request("GET", f"/api/posts/{slug}/live",
                 headers={"Accept": "text/event-stream", "Accept-Encoding": "gzip, deflate, br"})
    response = conn.getresponse()
    first = response.readline()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    assert response.getheader("Content-Encoding") is None
    assert first and time.monotonic() - started < 2
    session = requests.Session()
    token = session.get(cluster.url + "/api/session", timeout=10).json()["csrf_token"]
    sent = time.monotonic()
    answer = session.post(f"{cluster.url}/api/posts/{slug}/comments",
                          json={"comment": "Through the balancer", "author": "Ayesha",
                                "email": "ayesha@example.com"},
                          headers={"X-CSRFToken": token, "X-Forwarded-For": "203.0.113.9",
                                   "X-Forwarded-Host": "evil.example"}, timeout=10)
    assert answer.status_code == 201, answer.text
    comment_id = answer.json()["comment"]["id"]
    while True:
        line = response.readline().decode()
        assert line, "the stream ended"
        data = json.loads(line[5:]) if line.startswith("data:") else None
        if isinstance(data, dict) and data.get("id") == comment_id:
            break
    assert time.monotonic() - sent < 1.5
    conn.close()
    app = make_app(cluster.database_url)
    with app.app_context():
        assert db.session.get(Comment, comment_id).ip == "127.0.0.1"
    feed = requests.get(cluster.url + "/comments/feed/", timeout=10,
                        headers={"X-Forwarded-Host": "evil.example", "Accept-Encoding": "gzip"})
    assert feed.status_code == 200 and "Through the balancer" in feed.text
    assert "evil.example" not in feed.text


class TimedReader(threading.Thread):
    """A stream's `data:` lines, each with the moment it arrived."""

    def __init__(self, port: int, slug: str) -> None:
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", f"/api/posts/{slug}/live", headers={"Accept": "text/event-stream"})
        self.sock = self.conn.sock  # (the response may take it over from the connection)
        self.response = self.conn.getresponse()
        self.lines: list[tuple[float, str]] = []
        self.start()

    def run(self) -> None:
        try:
            while line := self.response.readline():
                self.lines.append((time.monotonic(), line.decode()))
        except (OSError, http.client.HTTPException):  # closed under it
            pass

    def arrival(self, comment_id: int, timeout: float = 5) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                data = json.loads(line[5:]) if line.startswith("data:") else None
                if isinstance(data, dict) and data.get("id") == comment_id:
                    return at
            time.sleep(0.005)
        raise AssertionError(f"comment {comment_id} never arrived")

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # the reading thread sees the end ...
        self.join(5)
        self.response.close()  # ... before its response is closed under it
        self.conn.close()


@needs_haproxy
def test_the_balancer_does_not_hold_events_back(cluster):
    """An event reaches a reader through HAProxy as soon as it reaches one reading the hosts
    directly. (Without `option http-no-delay` HAProxy tells the kernel more of the response is
    coming and each small event waited ~200 ms for a fuller packet.)"""
    slug = cluster.slugs[2]
    port = int(cluster.url.rsplit(":", 1)[1])
    direct = [TimedReader(cluster.ports[name], slug) for name in "ab"]
    through = TimedReader(port, slug)
    session = requests.Session()
    token = session.get(cluster.url + "/api/session", timeout=10).json()["csrf_token"]
    extra = []
    try:
        time.sleep(0.5)
        for i in range(6):
            answer = session.post(f"{cluster.url}/api/posts/{slug}/comments",
                                  json={"comment": f"Quick {i}", "author": "Bilal",
                                        "email": "bilal@example.com"},
                                  headers={"X-CSRFToken": token}, timeout=10)
            assert answer.status_code == 201, answer.text
            comment_id = answer.json()["comment"]["id"]
            hosts = max(reader.arrival(comment_id) for reader in direct)
            extra.append(through.arrival(comment_id) - hosts)
            time.sleep(0.2)
    finally:
        for reader in [*direct, through]:
            reader.close()
    extra.sort()
    assert extra[len(extra) // 2] < 0.08, f"held back by the balancer: {extra}"


@needs_haproxy
def test_a_host_killed_mid_stream_loses_no_comment(cluster):
    """SIGKILL one host's master and workers while posters write: its readers reconnect through
    the balancer with Last-Event-ID, land on the other host and miss nothing; scripts/cluster
    starts the dead host again and HAProxy takes it back."""
    readers = open_readers(cluster)
    try:
        count = sum(len(rs) for rs in readers.values())
        spread = settle_spread(cluster, count)
        assert spread["a"] >= 3 and spread["b"] >= 3, spread  # readers on both hosts
        victims = cluster.host_pids("a")
        assert len(victims) == 2, victims  # the master and its one worker

        def kill() -> None:
            time.sleep(2.5)
            marks["killed"] = time.monotonic()
            for pid in victims:
                os.kill(pid, signal.SIGKILL)

        marks: dict[str, float] = {}
        killer = threading.Thread(target=kill, daemon=True)
        killer.start()
        campaign = run_posters(SimpleNamespace(url=cluster.url), cluster.slugs, posters=6,
                               seconds=6, rounds=2)
        killer.join()
        lost = balancer_errors_as_lost_answers(campaign, (marks["killed"] - 0.5,
                                                          marks["killed"] + 3))
        assert lost <= 6  # at most one post in flight per poster
        figures = account(cluster.database_url, campaign, readers, lost_answers_ok=True)
        reconnected = sum(1 for rs in readers.values() for r in rs if len(r.connections) > 1)
        assert reconnected >= spread["a"] - 1, (reconnected, spread)  # (one may be the probe)
        assert figures["5xx"] == 0 and figures["accepted"] >= 30, figures
    finally:
        close_all(readers)
    cluster.wait_for("host a exited; starting it again", 10)
    deadline = time.monotonic() + 20
    while cluster.servers()["a"]["status"] != "UP":
        assert time.monotonic() < deadline, cluster.servers()["a"]
        time.sleep(0.2)
    assert set(cluster.host_pids("a")).isdisjoint(victims)


@needs_haproxy
def test_a_rolling_restart_loses_nothing(cluster):
    """`kill -HUP` restarts both hosts, one at a time, while posters write and readers read:
    no error, every accepted comment stored once and delivered once to every reader, and every
    reader reconnected (both hosts went away under them)."""
    readers = open_readers(cluster)
    try:
        count = sum(len(rs) for rs in readers.values())
        settle_spread(cluster, count)
        before = {name: cluster.host_pids(name) for name in "ab"}
        mark = len(cluster.log_text())
        stop = threading.Event()
        campaign, posters = post_until(cluster.url, cluster.slugs, stop)
        try:
            time.sleep(1)
            cluster.process.send_signal(signal.SIGHUP)
            cluster.wait_for("rolling restart done", 60, after=mark)
            time.sleep(1)  # and a little after
        finally:
            stop.set()
            for poster in posters:
                poster.join(30)
        figures = account(cluster.database_url, campaign, readers)
        for name in "ab":
            assert set(cluster.host_pids(name)).isdisjoint(before[name])
        assert all(len(r.connections) > 1 for rs in readers.values() for r in rs)
    finally:
        close_all(readers)
    assert figures["5xx"] == 0 and set(campaign.statuses) == {201}, campaign.statuses
    assert {name: row["status"] for name, row in cluster.servers().items()} == {"a": "UP",
                                                                               "b": "UP"}


@needs_haproxy
@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_stopping_leaves_no_process_behind(how, tmp_path):
    """Ctrl-C (SIGINT to the terminal's whole process group) or SIGTERM to the script alone:
    HAProxy, both hosts' masters and workers and the log prefixers are all gone."""
    services()
    prefix = f"parley-cluster-{uuid.uuid4().hex[:8]}:"
    with throwaway_database() as url, redis_keys_removed(prefix), running_cluster(
            cluster_env(url, TEST_REDIS_URL, prefix), tmp_path / "cluster.log") as running:
        assert requests.get(running.url + "/healthz", timeout=10).status_code == 200
        everything = running.descendants()
        assert len(everything) >= 7, everything  # HAProxy, 2 masters, 2 workers, 3 prefixers
        if how == "Ctrl-C":
            status = running.stop(signal.SIGINT, group=True)
        else:
            status = running.stop(signal.SIGTERM)
        assert status == 0, running.log_text()[-2000:]
        deadline = time.monotonic() + 5
        while (left := [p for p in everything if Path(f"/proc/{p}").exists()
                        and "zombie" not in Path(f"/proc/{p}/status").read_text()]):
            assert time.monotonic() < deadline, f"left behind: {left}"
            time.sleep(0.1)
        assert "cluster: stopped." in running.log_text()
        with pytest.raises(requests.ConnectionError):
            requests.get(running.url + "/healthz", timeout=2)
