"""Live streams are capped per client IP (LIVE_MAX_STREAMS_PER_IP), over a real socket: the stream
over the cap gets 429 with Retry-After, a closed stream frees its slot, other readers (another IP,
another reader behind the same trusted proxy, a moderator) are not held back."""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager

import pytest
import requests

from app.live import get_hub
from app.live.hub import Hub
from tests.servers import SSEReader
from tests.test_admin_live import Stream, admin_session, serve
from tests.test_live import LIVE

HOST = "127.0.0.1"


def raw_get(server, path: str, *, source: str = HOST, headers: dict[str, str] | None = None,
            method: str = "GET") -> tuple[int, dict[str, str], socket.socket]:
    """Open *path* from the address *source* (any of 127.0.0.0/8 reaches the server), read the
    status and headers, and leave the socket open (the stream runs on)."""
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection((HOST, port), timeout=10, source_address=(source, 0))
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: text/event-stream",
             *(f"{k}: {v}" for k, v in (headers or {}).items()), "", ""]
    sock.sendall("\r\n".join(lines).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    status_line, *header_lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    found = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), found, sock


def all_closed(app) -> None:
    """Wait for the server to end every stream (so no socket outlives the test)."""
    assert wait_until(lambda: get_hub(app).count() == 0 and not get_hub(app)._streams_of)


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@contextmanager
def readers(url: str, count: int):
    opened = []
    try:
        for _ in range(count):
            opened.append(SSEReader(url))
        yield opened
    finally:
        for reader in opened:
            reader.close()


@pytest.fixture
def served(database_url):
    with serve(database_url) as (app, server):
        yield app, server


def test_the_21st_stream_from_one_ip_gets_429_and_a_closed_one_frees_a_slot(served):
    app, server = served
    assert app.config["LIVE_MAX_STREAMS_PER_IP"] == 20  # the default
    with readers(server.url + LIVE, 20) as open_streams:
        assert {r.status for r in open_streams} == {200}
        for reader in open_streams:
            reader.wait_for(0)
        over = requests.get(server.url + LIVE, stream=True, timeout=10)
        if over.status_code != 429:
            over.close()  # a stream: reading its body would never end
        assert over.status_code == 429
        assert over.headers["Retry-After"] == "30"
        assert over.json()["error"] == "too_many_streams"
        assert "at most 20" in over.json()["message"]
        over.close()

        # another IP is not affected
        status, headers, sock = raw_get(server, LIVE, source="127.0.0.2")
        assert (status, headers["content-type"]) == (200, "text/event-stream; charset=utf-8")
        sock.close()

        # closing one frees its slot (once the server notices: at the next heartbeat)
        open_streams.pop().close()
        assert wait_until(lambda: get_hub(app).streams_of(HOST) == 19)
        again = SSEReader(server.url + LIVE)
        assert again.status == 200
        open_streams.append(again)
    all_closed(app)


def test_a_head_request_holds_no_slot_and_a_reader_gone_frees_its_own(database_url):
    """A HEAD answer is never iterated (a generator's `finally` would never run), and a reader
    that goes without a word is noticed at the next write, the heartbeat at the latest."""
    with serve(database_url, LIVE_MAX_STREAMS_PER_IP=2) as (app, server):
        for _ in range(5):
            assert requests.head(server.url + LIVE, timeout=10).status_code == 200
        assert wait_until(lambda: get_hub(app).streams_of(HOST) == 0)
        for _ in range(3):
            gone = [raw_get(server, LIVE) for _ in range(2)]
            assert [status for status, _, _ in gone] == [200, 200]
            for _, _, sock in gone:
                sock.close()
            assert wait_until(lambda: get_hub(app).streams_of(HOST) == 0)
        all_closed(app)


def test_readers_behind_one_trusted_proxy_are_counted_apart(database_url):
    """With PROXY_COUNT the reader's address is X-Forwarded-For's, so one proxy's readers are
    not one client; without it, everyone behind the proxy would share one cap."""
    with serve(database_url, LIVE_MAX_STREAMS_PER_IP=1, PROXY_COUNT=1) as (app, server):
        first = raw_get(server, LIVE, headers={"X-Forwarded-For": "203.0.113.1"})
        second = raw_get(server, LIVE, headers={"X-Forwarded-For": "203.0.113.2"})
        third = raw_get(server, LIVE, headers={"X-Forwarded-For": "203.0.113.1"})
        assert [first[0], second[0], third[0]] == [200, 200, 429]
        assert third[1]["retry-after"] == "30"
        for _, _, sock in (first, second, third):
            sock.close()
        all_closed(app)


def test_zero_turns_the_cap_off(database_url):
    with serve(database_url, LIVE_MAX_STREAMS_PER_IP=0) as (app, server):
        with readers(server.url + LIVE, 25) as many:
            assert {r.status for r in many} == {200}
        all_closed(app)


def test_the_moderation_queue_stream_is_not_capped(database_url):
    """Moderators are signed in and few; a cap could lock one out of their own queue."""
    with serve(database_url, LIVE_MAX_STREAMS_PER_IP=1) as (app, server):
        with readers(server.url + LIVE, 1) as [public]:
            assert public.status == 200
            refused = requests.get(server.url + LIVE, stream=True, timeout=10)
            refused.close()
            assert refused.status_code == 429
            session = admin_session(server)
            streams = [Stream(session, server.url + "/admin/live") for _ in range(3)]
            try:
                assert [s.response.status_code for s in streams] == [200] * 3
                for stream in streams:
                    stream.wait_for(lambda k, d: k == "counts")
            finally:
                for stream in streams:
                    stream.close()
        all_closed(app)


def test_a_slot_is_given_back_once_however_often_its_stream_is_closed():
    hub = Hub(None, None)  # type: ignore[arg-type]  (never started: nothing subscribes)
    slots = [hub.claim("192.0.2.1", 2), hub.claim("192.0.2.1", 2)]
    assert hub.claim("192.0.2.1", 2) is None and hub.claim("192.0.2.2", 2) is not None
    slots[0].release()
    slots[0].release()
    assert hub.streams_of("192.0.2.1") == 1
    assert hub.claim("192.0.2.1", 2) is not None and hub.claim("192.0.2.1", 2) is None
