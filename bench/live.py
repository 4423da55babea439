"""Live: delay from a POST to its delivery at N connected readers, and memory per idle reader.

One gunicorn gevent worker serves every reader; one asyncio process on uvloop opens them all
(plain sockets with a Protocol, the lightest reader Python has, so the client adds as little
delay as it can). Each POST's delay is measured from just before it is sent to the moment each
reader has received its `comment.created` event. One warm-up post before the measured ones is
not counted (the first comment loads templates and warms the posting path). Set
BENCH_LIVE_DEBUG=1 to print each post's first and last arrival.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from pathlib import Path

import uvloop

from bench import common, seed


class Reader(asyncio.Protocol):
    def __init__(self, path: str, host: str, marks: dict) -> None:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                        f"Connection: keep-alive\r\n\r\n").encode()
        self.connected = asyncio.get_running_loop().create_future()
        self.marks = marks  # nonce -> list of arrival times, one per reader
        self.seen: set[str] = set()  # the nonces this reader has had (an event names it twice)
        self.buffer = b""
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        if not self.connected.done() and b"connected to post" in self.buffer:
            self.connected.set_result(True)
        while b"bench-nonce-" in self.buffer:
            start = self.buffer.index(b"bench-nonce-") + 12
            end = self.buffer.find(b"-end", start)
            if end < 0:
                break
            nonce = self.buffer[start:end].decode()
            if nonce not in self.seen:  # the text and the list item both carry it: count it once
                self.seen.add(nonce)
                self.marks.setdefault(nonce, []).append(now)
            self.buffer = self.buffer[end + 4:]
        if len(self.buffer) > 65536:
            self.buffer = self.buffer[-256:]

    def connection_lost(self, exc) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("closed"))


def _post(base: str, slug: str, token_session: dict, nonce: str) -> int:
    body = json.dumps({"comment": f"Live bench-nonce-{nonce}-end", "author": "Bench",
                       "email": "bench@example.com"}).encode()
    request = urllib.request.Request(
        f"{base}/api/posts/{slug}/comments", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-CSRFToken": token_session["token"],
                 "Cookie": token_session["cookie"]})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def _session(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/session", timeout=30) as response:
        token = json.loads(response.read())["csrf_token"]
        cookie = response.headers.get("Set-Cookie", "").split(";", 1)[0]
    return {"token": token, "cookie": cookie}


async def _measure(server: common.Server, slug: str, readers: int, posts: int) -> dict:
    loop = asyncio.get_running_loop()
    host, port = server.url.removeprefix("http://").split(":")
    path = f"/api/posts/{slug}/live"
    marks: dict[str, list[float]] = {}
    transports = []
    rss_before = server.worker_rss_kib()
    try:
        for offset in range(0, readers, 250):  # connect in batches: the accept queue is finite
            batch = []
            for _ in range(min(250, readers - offset)):
                _, protocol = await loop.create_connection(
                    lambda: Reader(path, f"{host}:{port}", marks), host, int(port))
                transports.append(protocol.transport)
                batch.append(protocol.connected)
            await asyncio.wait_for(asyncio.gather(*batch), 60)
        await asyncio.sleep(2)  # let the worker settle before reading its memory
        rss_idle = server.worker_rss_kib()
        session = await loop.run_in_executor(None, _session, server.url)
        delays: list[float] = []
        for i in range(-1, posts):  # post -1 warms the posting path up and is not counted
            nonce = f"{readers}x{i}"
            sent = time.perf_counter()
            status = await loop.run_in_executor(None, _post, server.url, slug, session, nonce)
            if status != 201:
                raise RuntimeError(f"POST answered {status}")
            deadline = time.monotonic() + 30
            while len(marks.get(nonce, ())) < readers and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            arrivals = marks.get(nonce, [])
            if arrivals and os.environ.get("BENCH_LIVE_DEBUG"):
                print(f"    post {i}: first {(min(arrivals) - sent) * 1000:.0f} ms, "
                      f"last {(max(arrivals) - sent) * 1000:.0f} ms", flush=True)
            if i >= 0:
                delays.extend(t - sent for t in arrivals)
                delays.extend([float("inf")] * (readers - len(arrivals)))
            await asyncio.sleep(0.5)
    finally:
        for transport in transports:
            transport.close()
    delays.sort()
    return {"readers": readers, "posts": posts, "deliveries": len(delays),
            "missed": sum(1 for d in delays if d == float("inf")),
            "p50_ms": delays[len(delays) // 2] * 1000,
            "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000,
            "max_ms": delays[-1] * 1000,
            "kib_per_idle_reader": (rss_idle - rss_before) / readers}


def run(tmp: Path, *, sizes=(100, 1000, 5000), posts: int = 10,
        database_url: str | None = None) -> dict:
    common.raise_nofile()
    database_url = database_url or f"sqlite:///{tmp / 'live.db'}"
    info = seed.seed_parley(database_url, 200)
    env = common.parley_env(database_url, BENCH_TMP=str(tmp))
    results = {}
    for size in sizes:
        with common.gunicorn("app:create_app()", env, 1, name=f"live{size}",
                             worker_connections=size + 1000) as server:
            common.get(server.url + common.PERMALINK)  # load the app before measuring memory
            # uvloop (bench/run installs it): libuv reads the sockets for a fraction of asyncio's
            # cost, so the measuring client adds less to the delay it measures
            result = uvloop.run(_measure(server, info["slug"], size, posts))
        results[f"live_{size}"] = result
        print(f"  live {size:>5} readers p50 {result['p50_ms']:.0f} ms p99 {result['p99_ms']:.0f} ms"
              f" missed {result['missed']} {result['kib_per_idle_reader']:.1f} KiB/reader", flush=True)
    return results
