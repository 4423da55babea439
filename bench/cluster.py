"""Cluster: delay from a POST to its delivery at 10,000 readers spread over two hosts by HAProxy.

`scripts/cluster` runs as an operator runs it (HAProxy from deploy/haproxy.cfg in front of two
`gunicorn -k gevent -w 1` hosts on one PostgreSQL database and one Redis); one asyncio process
on uvloop holds every reader's stream through the balancer, posts through it, and times each
POST from just before it is sent to the moment each reader has its `comment.created` event.
HAProxy's least-connections balancing spreads the readers; its statistics say how.

Every stream holds two sockets in HAProxy. Where the open-file hard limit keeps one HAProxy
below the streams wanted (a sandbox that may not raise it: 20,000 here, so 9,950 connections), more
HAProxy processes with the same configuration share the port (SO_REUSEPORT: the kernel deals
the connections out) and the row says how many; a server raises the limit and runs one.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import uuid
from pathlib import Path

import aiohttp
import redis
import sqlalchemy as sa
import uvloop

from app.extensions import db
from app.settings import set_setting
from bench import common
from bench.live import _post, _session
from bench.seed import parley_app

SCRIPT = common.ROOT / "scripts" / "cluster"


class Reader(asyncio.Protocol):
    """One live stream, its nonces timed as they arrive (once each: an event carries its text
    twice). The bytes are searched as they come, chunked framing and all: decoding it costs the
    reading process a third of its time here, and a chunk boundary inside a nonce (HAProxy
    forwards each event as the host wrote it, so none was seen) would show as a missed delivery,
    never as a wrong delay."""

    def __init__(self, path: str, host: str, marks: dict) -> None:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                        f"Connection: keep-alive\r\n\r\n").encode()
        self.connected = asyncio.get_running_loop().create_future()
        self.marks = marks  # nonce -> list of arrival times
        self.seen: set[bytes] = set()
        self.tail = b""  # the end of the last read, in case a nonce was cut between two reads
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.connected.done():
            if b"connected to post" in self.tail + data:
                self.connected.set_result(True)
            elif not data.startswith(b"HTTP/1.1 200") and not self.tail:
                self.connected.set_exception(ConnectionError(data[:200]))
        text = self.tail + data
        at = text.find(b"bench-nonce-")
        while at >= 0:
            end = text.find(b"-end", at + 12)
            if end < 0:
                break
            nonce = text[at + 12:end]
            if nonce not in self.seen:
                self.seen.add(nonce)
                self.marks.setdefault(nonce.decode(), []).append(now)
            at = text.find(b"bench-nonce-", end)
        self.tail = text[-64:]

    def connection_lost(self, exc) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("closed"))


# --- the cluster ----------------------------------------------------------------------------

def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        try:
            children = Path(f"/proc/{todo[0]}/task/{todo[0]}/children").read_text().split()
        except OSError:
            children = []
        todo = todo[1:] + [int(c) for c in children]
        found += [int(c) for c in children]
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time *pids* have used so far (from /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def hosts_seen_by(path: str, backend: str = "hosts") -> dict[str, dict[str, str]]:
    """One HAProxy's statistics row for each host in *backend* (status, connections ...)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall(b"show stat\n")
        text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    lines = text.splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
    return {r["svname"]: r for r in rows if r.get("pxname") == backend and r["svname"] in "ab"}


def streams_per_host(sockets: list[str]) -> dict[str, int]:
    """Open live streams per host, added up over every HAProxy process."""
    totals = {"a": 0, "b": 0}
    for path in sockets:
        for name, row in hosts_seen_by(path, "streams").items():
            totals[name] += int(row["scur"])
    return totals


def start_cluster(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    with open(log, "wb") as out:
        process = subprocess.Popen([str(SCRIPT)], cwd=common.ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while "Parley is serving" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"scripts/cluster did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return process, log.read_text(errors="replace")


def more_balancers(first_pid: int, count: int, tmp: Path) -> list[tuple[subprocess.Popen, str]]:
    """*count* more HAProxy processes like *first_pid* (same file, same environment), sharing
    its port; each with a runtime API socket of its own."""
    environ = dict(item.split("=", 1) for item in
                   Path(f"/proc/{first_pid}/environ").read_text().split("\0") if "=" in item)
    argv = cmdline(first_pid).decode().split("\0")[:-1]
    extra = []
    for i in range(count):
        env = environ | {"PARLEY_HAPROXY_SOCKET": str(tmp / f"haproxy-{i + 2}.sock")}
        process = subprocess.Popen(argv, cwd=common.ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        extra.append((process, env["PARLEY_HAPROXY_SOCKET"]))
    for process, path in extra:  # up, and its own health checks have found both hosts
        deadline = time.monotonic() + 20
        while True:
            try:
                if {r["status"] for r in hosts_seen_by(path).values()} == {"UP"}:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("an extra HAProxy did not start")
            time.sleep(0.1)
    return extra


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- the measurement ---------------------------------------------------------------------------

async def _post_burst(url: str, slug: str, posters: int, seconds: float, hosts: list[int],
                      balancers: list[int]) -> dict:
    """*posters* posting through the balancer for *seconds* (no reader connected): accepted
    posts per second, and the hosts' and HAProxy's CPU per accepted post."""
    accepted = 0
    statuses: dict[int, int] = {}

    async def poster(p: int, deadline: float) -> None:
        nonlocal accepted
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(f"{url}/api/session") as response:
                token = (await response.json())["csrf_token"]
            n = 0
            while time.monotonic() < deadline:
                n += 1
                body = {"comment": f"Burst p{p} n{n}: the talks went further than anyone "
                                   "expected.", "author": f"Poster {p}",
                        "email": f"poster{p}@load.example.com"}
                async with session.post(f"{url}/api/posts/{slug}/comments", json=body,
                                        headers={"X-CSRFToken": token}) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    accepted += response.status == 201

    cpu = (cpu_seconds(hosts), cpu_seconds(balancers))
    started = time.monotonic()
    await asyncio.gather(*(poster(p, started + seconds) for p in range(posters)))
    elapsed = time.monotonic() - started
    used = (cpu_seconds(hosts) - cpu[0], cpu_seconds(balancers) - cpu[1])
    return {"posters": posters, "seconds": round(elapsed, 1), "statuses": statuses,
            "per_second": accepted / elapsed,
            "hosts_cpu_ms_per_post": used[0] / max(accepted, 1) * 1000,
            "haproxy_cpu_ms_per_post": used[1] / max(accepted, 1) * 1000}


async def _measure(url: str, slug: str, readers: int, posts: int, sockets: list[str],
                   hosts: dict[str, list[int]], balancers: list[int]) -> dict:
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").split(":")
    path = f"/api/posts/{slug}/live"
    marks: dict[str, list[float]] = {}
    transports = []
    rss_before = {name: rss_kib(pids) for name, pids in hosts.items()}
    all_hosts = [pid for pids in hosts.values() for pid in pids]
    haproxy_before = rss_kib(balancers)
    try:
        for offset in range(0, readers, 250):  # in batches: accept queues are finite
            batch = []
            for _ in range(min(250, readers - offset)):
                _, protocol = await loop.create_connection(
                    lambda: Reader(path, f"{host}:{port}", marks), host, int(port))
                transports.append(protocol.transport)
                batch.append(protocol.connected)
            await asyncio.wait_for(asyncio.gather(*batch), 60)
        await asyncio.sleep(2)  # let the hosts settle before reading their memory
        spread = streams_per_host(sockets)
        rss_idle = {name: rss_kib(pids) for name, pids in hosts.items()}
        haproxy_idle = rss_kib(balancers)
        session = await loop.run_in_executor(None, _session, url)
        delays: list[float] = []
        cpu_used = [0.0, 0.0, 0.0]  # reading process, hosts, HAProxy: over the measured posts
        for i in range(-1, posts):  # post -1 warms both hosts' posting paths and is not counted
            nonce = f"cluster{readers}x{i}"
            cpu = (time.process_time(), cpu_seconds(all_hosts), cpu_seconds(balancers))
            sent = time.perf_counter()
            status = await loop.run_in_executor(None, _post, url, slug, session, nonce)
            if status != 201:
                raise RuntimeError(f"POST answered {status}")
            deadline = time.monotonic() + 30
            while len(marks.get(nonce, ())) < readers and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            arrivals = marks.get(nonce, [])
            used = (time.process_time() - cpu[0], cpu_seconds(all_hosts) - cpu[1],
                    cpu_seconds(balancers) - cpu[2])
            if os.environ.get("BENCH_CLUSTER_DEBUG") and arrivals:
                print(f"    post {i}: first {(min(arrivals) - sent) * 1000:.0f} ms, last "
                      f"{(max(arrivals) - sent) * 1000:.0f} ms; CPU ms: reading process "
                      f"{used[0] * 1000:.0f}, hosts {used[1] * 1000:.0f}, HAProxy "
                      f"{used[2] * 1000:.0f}", flush=True)
            if i >= 0:
                cpu_used = [a + b for a, b in zip(cpu_used, used, strict=True)]
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
            "readers_per_host": spread,
            # CPU per delivered event (µs), from /proc: what sizing a host or a balancer needs
            "cpu_us_per_delivery": {
                name: used / (posts * readers) * 1e6
                for name, used in zip(("reader", "hosts", "haproxy"), cpu_used, strict=True)},
            "kib_per_idle_reader_hosts": sum(rss_idle[n] - rss_before[n] for n in hosts) / readers,
            "kib_per_idle_reader_haproxy": (haproxy_idle - haproxy_before) / readers}


def run(tmp: Path, *, readers: int = 10000, posts: int = 10,
        postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        redis_url: str = "redis://127.0.0.1:6379/0") -> dict:
    """The cluster row, or {"skipped": why} when PostgreSQL, Redis or HAProxy is not there."""
    common.raise_nofile()
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return skipped(readers, f"Redis at {redis_url} is not reachable ({exc})")
    base = sa.make_url(postgres_url).set(drivername="postgresql+psycopg")
    name = f"parley_bench_cluster_{uuid.uuid4().hex[:8]}"
    try:
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        return skipped(readers, f"PostgreSQL at {postgres_url} is not reachable ({exc.orig})")
    database_url = base.set(database=name).render_as_string(hide_password=False)
    prefix = f"parley-bench-{uuid.uuid4().hex[:8]}:"
    env = common.parley_env(
        database_url, REDIS_URL=redis_url, REDIS_PREFIX=prefix, LIVE_MAX_STREAMS_PER_IP="0",
        WORKERS="1", PORT=str(common.free_port()), HOST_A_PORT=str(common.free_port()),
        HOST_B_PORT=str(common.free_port()))
    env = {k: v for k, v in env.items() if not k.startswith(("PARLEY_", "GUNICORN_"))}
    process = None
    extra: list[tuple[subprocess.Popen, str]] = []
    try:
        process, log = start_cluster(env, tmp / "cluster.log")
        url = f"http://127.0.0.1:{env['PORT']}"
        sockets = [re.search(r"runtime API: (\S+)\)", log).group(1)]
        maxconn = int(re.search(r"up to (\d+) connections", log).group(1))
        everything = descendants(process.pid)
        haproxy = [p for p in everything if b"haproxy" in cmdline(p).split(b"\0")[0]]
        hosts = {h: [p for p in everything if b"gunicorn" in cmdline(p)
                     and f"127.0.0.1:{env[f'HOST_{h.upper()}_PORT']}".encode() in cmdline(p)]
                 for h in ("a", "b")}
        wanted = readers + 100  # the readers, the posts, the health checks
        count = -(-wanted // maxconn)
        if count > 1:
            extra = more_balancers(haproxy[0], count - 1, tmp)
            sockets += [path for _, path in extra]
            haproxy += [p.pid for p, _ in extra]
        app = parley_app(database_url)
        with app.app_context():
            set_setting("comment_moderation", "nobody")
            set_setting("comment_flood_seconds", 0)
            db.session.commit()
            db.engine.dispose()
        for host in ("A", "B"):  # load each host's app before its memory is read
            common.get(f"http://127.0.0.1:{env[f'HOST_{host}_PORT']}{common.PERMALINK}")
        result = uvloop.run(_measure(url, common.SLUG, readers, posts, sockets, hosts, haproxy))
        all_hosts = [pid for pids in hosts.values() for pid in pids]
        result["posting"] = uvloop.run(_post_burst(url, common.SLUG, 16, 6, all_hosts, haproxy))
        result["balancers"] = len(sockets)
        result["haproxy_maxconn"] = maxconn
    except (OSError, RuntimeError, urllib.error.URLError) as exc:
        result = {"skipped": f"{type(exc).__name__}: {exc}"}
    finally:
        for balancer, _ in extra:
            stop(balancer)
        if process is not None:
            stop(process)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()
    if "skipped" in result:
        return skipped(readers, result["skipped"])
    posting = result["posting"]
    print(f"  cluster {readers:>5} readers over {result['readers_per_host']} via "
          f"{result['balancers']} HAProxy: p50 {result['p50_ms']:.0f} ms "
          f"p99 {result['p99_ms']:.0f} ms missed {result['missed']}; posting "
          f"{posting['per_second']:.0f}/s, hosts {posting['hosts_cpu_ms_per_post']:.2f} ms CPU "
          f"per post", flush=True)
    return {f"cluster_{readers}": result}


def skipped(readers: int, why: str) -> dict:
    print(f"  cluster: skipped — {why}", flush=True)
    return {f"cluster_{readers}": {"skipped": why}}
