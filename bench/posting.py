"""Posting: comments accepted per second, then exact accounting, in the store and at the readers.

The cases, each measured once in every round, in turn, so their ratios come from the same minutes:

    parley_1          1 poster on the article
    isso_1            1 poster on Isso's thread
    parley_32         32 posters on the article
    parley_32_spread  32 posters, each on a post of its own
    isso_32           32 posters on Isso's thread (Isso's only database is SQLite)

Every post Parley's posters write to has two live readers, so the spread case delivers as many
events as the one-post case (to 64 readers rather than 2). A reader drops its stream after every
RECONNECT_EVERY events and comes back with Last-Event-ID, as an EventSource does after a network
blip, so replay is exercised while the posters commit in any order (counted in events, not
seconds, so both 32-poster cases reconnect as often in all); at the end it must have had every
accepted comment exactly once, its events' ids always growing, and the post's stored count as
its last count event.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench import common, reading, seed, spam

RECONNECT_EVERY = 100  # events a reader takes before it drops its stream and comes back
READER_GRACE_SECONDS = 20  # after the posters stop: the hubs poll every LIVE_POLL_SECONDS (2 s)


@dataclass(frozen=True)
class Case:
    name: str
    side: str  # "parley" or "isso"
    posters: int
    posts: int = 1  # poster i writes to post i % posts
    readers: int = 0  # live readers of each post written to (Parley)


CASES = (
    Case("parley_1", "parley", 1, readers=2),
    Case("isso_1", "isso", 1),
    Case("parley_32", "parley", 32, readers=2),
    Case("parley_32_spread", "parley", 32, posts=32, readers=2),
    Case("isso_32", "isso", 32),
)


# --- live readers --------------------------------------------------------------------------------

@dataclass(eq=False)
class Reader:
    """One EventSource-like reader of a post's live stream."""

    url: str
    target: int  # which of the case's posts it reads
    first_drop: int  # events before its first reconnection (staggered between readers)
    created: list[int] = field(default_factory=list)  # comment ids, in the order received
    last_id: int | None = None
    last_count: int | None = None
    not_growing: int = 0  # events whose id was not above the one before (a repeat or a step back)
    connections: int = 0
    expected: tuple[set[int], int] | None = None  # (accepted ids, stored count), at the end

    def done(self) -> bool:
        return (self.expected is not None and self.expected[0] <= set(self.created)
                and self.last_count == self.expected[1])

    async def run(self, session: aiohttp.ClientSession, connected: asyncio.Event) -> None:
        """Read until cancelled (never mid-line otherwise: a cancelled readline loses its part)."""
        drop_after = self.first_drop
        while True:
            headers = {"Accept": "text/event-stream"}
            if self.last_id is not None:
                headers["Last-Event-ID"] = str(self.last_id)
            async with session.get(self.url, headers=headers) as response:
                response.raise_for_status()
                self.connections += 1
                await response.content.readline()  # the first frame: the server has our position
                connected.set()
                left, drop_after = drop_after, RECONNECT_EVERY
                block: dict[str, str] = {}
                while left > 0:
                    raw = await response.content.readline()
                    if not raw:
                        break
                    line = raw.decode("utf-8").rstrip("\n")
                    if not line:
                        left -= self._dispatch(block)
                        block = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        block[name] = value[1:] if value.startswith(" ") else value

    def _dispatch(self, block: dict[str, str]) -> int:
        """Take one event; 1 if it had an id (a place to come back to), else 0."""
        if "id" not in block:
            return 0
        event_id = int(block["id"])
        if self.last_id is not None and event_id <= self.last_id:
            self.not_growing += 1
        self.last_id = event_id if self.last_id is None else max(event_id, self.last_id)
        kind = block.get("event")
        if kind == "comment.created":
            self.created.append(json.loads(block["data"])["id"])
        elif kind == "count":
            self.last_count = json.loads(block["data"])["count"]
        return 1

    def verdict(self) -> dict:
        accepted, count = self.expected or (set(), -1)
        got = set(self.created)
        return {"received": len(self.created), "missing": len(accepted - got),
                "unexpected": len(got - accepted), "twice": len(self.created) - len(got),
                "not_growing": self.not_growing, "count_right": self.last_count == count,
                "connections": self.connections}


# --- CPU: the server's workers, PostgreSQL's backends, the machine --------------------------------

class PostgresCpu:
    """CPU used by the PostgreSQL backends serving *database*, read from /proc as the workers' is.

    Backends come and go (a worker's pool closes the connections it opened beyond its size), so a
    thread looks every 50 ms: each backend counts from its first look (from 0 if it started during
    the measure) to its last. A backend that lived between two looks, and the last 50 ms of one
    that ended, are missed, so the figure is a floor. Nothing of other databases is counted (the
    machine's PostgreSQL is shared); PostgreSQL's own background processes are not either.
    """

    def __init__(self, database: str, backend_pid: int) -> None:
        """*backend_pid*: any backend of this server (its parent is the postmaster)."""
        self.tag = f" {database} ".encode()
        status = Path(f"/proc/{backend_pid}/status").read_text()
        self.postmaster = int(status.split("PPid:", 1)[1].split()[0])
        self._first: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _look(self) -> dict[int, int]:
        ticks: dict[int, int] = {}
        try:
            children = Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children").read_text()
        except OSError:
            return ticks
        for pid in map(int, children.split()):
            try:
                if self.tag not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[pid] = int(fields[11]) + int(fields[12])
        return ticks

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for pid, t in self._look().items():
                self._first.setdefault(pid, 0)
                self._last[pid] = t

    def start(self) -> None:
        self._first = dict(self._look())
        self._last = dict(self._first)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        """CPU seconds since start()."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for pid, t in self._look().items():
            self._first.setdefault(pid, 0)
            self._last[pid] = t
        ticks = sum(t - self._first[pid] for pid, t in self._last.items())
        return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_times() -> list[int]:
    """The machine's CPU time by state, summed over cores (/proc/stat's first line)."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def _idle(before: list[int], after: list[int]) -> tuple[float, float]:
    """(idle %, I/O wait %) of the machine between two readings, as vmstat's `id` and `wa`."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta[:8]) or 1  # guest time is already in user
    return 100 * delta[3] / total, 100 * delta[4] / total


@dataclass(eq=False)
class Meter:
    """What the posting cost: the server's workers' CPU, PostgreSQL's, the posters' own (this
    process: what the machine's cores also had to find), the machine's idle time."""

    server: common.Server
    postgres: PostgresCpu | None
    figures: dict = field(default_factory=dict)

    def start(self) -> None:
        self._cpu, self._machine = self.server.worker_cpu_seconds(), _cpu_times()
        self._own = sum(os.times()[:2])
        if self.postgres is not None:
            self.postgres.start()

    def stop(self) -> None:
        self.figures["cpu_s"] = self.server.worker_cpu_seconds() - self._cpu
        self.figures["client_cpu_s"] = sum(os.times()[:2]) - self._own
        self.figures["pg_cpu_s"] = self.postgres.stop() if self.postgres is not None else None
        self.figures["idle_pct"], self.figures["iowait_pct"] = _idle(self._machine, _cpu_times())


# --- posters ---------------------------------------------------------------------------------------

async def _poster(session: aiohttp.ClientSession, post_one, target: int, deadline: float,
                  tag: str, stats: dict) -> None:
    n = 0
    while time.monotonic() < deadline:
        n += 1
        started = time.perf_counter()
        status, comment_id = await post_one(session, f"{tag}-{n}", target)
        stats["latencies"].append(time.perf_counter() - started)
        stats["status"][status] = stats["status"].get(status, 0) + 1
        if status == 201:
            stats["accepted"].append((target, comment_id))


async def _campaign(case: Case, client, seconds: float, run: str, meter: Meter,
                    reader_url=None, stored_count=None) -> dict:
    make_session, post_one = client
    stats: dict = {"status": {}, "accepted": [], "latencies": []}
    sessions = [await make_session() for _ in range(case.posters)]
    readers = [Reader(reader_url(target), target, RECONNECT_EVERY * (i + 1) // (case.readers + 1))
               for target in range(case.posts) for i in range(case.readers)]
    reader_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
    connected = [asyncio.Event() for _ in readers]
    tasks = [asyncio.create_task(r.run(reader_session, connected[i]))
             for i, r in enumerate(readers)]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in connected)), 30)
        meter.start()
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(_poster(s, post_one, i % case.posts, deadline, f"{run}-p{i}", stats)
                               for i, s in enumerate(sessions)))
        elapsed = time.monotonic() - started
        meter.stop()
        if readers:
            by_post: dict[int, set[int]] = {}
            for target, comment_id in stats["accepted"]:
                by_post.setdefault(target, set()).add(comment_id)
            for reader in readers:
                reader.expected = (by_post.get(reader.target, set()), stored_count(reader.target))
            give_up = time.monotonic() + READER_GRACE_SECONDS
            while not all(r.done() for r in readers) and time.monotonic() < give_up:
                if any(task.done() for task in tasks):  # a reader failed: say why
                    await asyncio.gather(*tasks)
                await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await reader_session.close()
        for s in sessions:
            await s.close()
    return {**meter.figures, "seconds": elapsed, "status": stats["status"],
            "ids": [comment_id for _, comment_id in stats["accepted"]],
            "latencies": stats["latencies"], "readers": [r.verdict() for r in readers]}


def _combined(case: Case, rounds: list[dict]) -> dict:
    """The rounds of one case added up: rate over all of them, percentiles over every post."""
    seconds = sum(r["seconds"] for r in rounds)
    accepted = sum(len(r["ids"]) for r in rounds)
    lat = sorted(x for r in rounds for x in r["latencies"]) or [float("nan")]
    status: dict = {}
    for r in rounds:
        for code, n in r["status"].items():
            status[code] = status.get(code, 0) + n
    accounts = [r["accounting"] for r in rounds]
    readers = [v for r in rounds for v in r["readers"]]

    def per_post(key: str) -> float:
        # the server's CPU per accepted post: unlike the rate, it hardly moves with how many
        # cores the posters and the rest of the machine leave free
        if not accepted or any(r.get(key) is None for r in rounds):
            return float("nan")
        return sum(r[key] for r in rounds) / accepted * 1000

    result = {
        "case": case.name, "posters": case.posters, "posts": case.posts,
        "seconds": round(seconds, 2), "accepted": accepted, "per_second": accepted / seconds,
        "status": status, "rounds": [round(len(r["ids"]) / r["seconds"], 1) for r in rounds],
        "p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "max_ms": lat[-1] * 1000,
        "cpu_ms_per_post": per_post("cpu_s"), "pg_cpu_ms_per_post": per_post("pg_cpu_s"),
        "client_cpu_ms_per_post": per_post("client_cpu_s"),
        "idle_pct": sum(r["idle_pct"] for r in rounds) / len(rounds),
        "iowait_pct": sum(r["iowait_pct"] for r in rounds) / len(rounds),
        "accounting": {**{k: sum(a[k] for a in accounts) for k in
                          ("accepted", "stored", "missing", "unaccepted_stored",
                           "answered_twice", "duplicate_texts")},
                       "exact": all(a["exact"] for a in accounts)},
    }
    if readers:
        result["readers"] = {
            **{k: sum(v[k] for v in readers) for k in
               ("received", "missing", "unexpected", "twice", "not_growing", "connections")},
            "readers": len(readers) // len(rounds),
            "exact": all(v["missing"] == v["unexpected"] == v["twice"] == v["not_growing"] == 0
                         and v["count_right"] for v in readers)}
    return result


def parley_client(base: str, slugs: list[str]):
    connector_limit = 64

    async def make_session():
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connector_limit),
                                        cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with session.get(f"{base}/api/session") as response:
            session.headers["X-CSRFToken"] = (await response.json())["csrf_token"]
        return session

    async def post_one(session, text, target):
        body = {"comment": f"Benchmark comment {text}", "author": f"Poster {text.split('-')[-2]}",
                "email": f"{text.split('-')[-2]}@bench.example.com"}
        async with session.post(f"{base}/api/posts/{slugs[target]}/comments",
                                json=body) as response:
            data = await response.json(content_type=None)
            return response.status, (data.get("comment") or {}).get("id")

    return make_session, post_one


def isso_client(base: str, thread: str):
    async def make_session():
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))

    async def post_one(session, text, target):
        body = {"text": f"Benchmark comment {text}", "author": f"Poster {text.split('-')[-2]}",
                "email": f"{text.split('-')[-2]}@bench.example.com", "title": "Bench"}
        async with session.post(f"{base}/new?uri={thread}", json=body) as response:
            data = await response.json(content_type=None)
            return response.status, data.get("id") if isinstance(data, dict) else None

    return make_session, post_one


def add_posts(app, count: int) -> list[str]:
    """The article's slug and *count* - 1 more posts like it (for posters spread over posts)."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Post

    with app.app_context():
        article = db.session.scalar(sa.select(Post).order_by(Post.id))
        slugs = [article.slug]
        for n in range(1, count):
            slug = f"bench-post-{n}"
            db.session.add(Post(slug=slug, title=f"{article.title} ({n})", body=article.body,
                                published_at=article.published_at))
            slugs.append(slug)
        db.session.commit()
        db.session.remove()
    return slugs


def post_ids(app, slugs: list[str]) -> list[int]:
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Post

    with app.app_context():
        ids = dict(db.session.execute(sa.select(Post.slug, Post.id)).all())
        db.session.remove()
    return [ids[slug] for slug in slugs]


def stored_count(app, post_id: int) -> int:
    from app.extensions import db
    from app.models import CommentCount

    with app.app_context():
        count = CommentCount.of(post_id)
        db.session.remove()
    return count


def account_parley(app, run: str, accepted: list[int]) -> dict:
    """Every accepted comment stored exactly once, and nothing stored that was not accepted."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Comment

    with app.app_context():
        rows = db.session.execute(sa.select(Comment.id, Comment.content).where(
            Comment.content.like(f"Benchmark comment {run}-%"))).all()
        db.session.remove()
    return _verdict(accepted, [r[0] for r in rows], [r[1] for r in rows])


def account_isso(db_path: Path, run: str, accepted: list[int]) -> dict:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT id, text FROM comments WHERE text LIKE ?",
                            (f"%Benchmark comment {run}-%",)).fetchall()
    return _verdict(accepted, [r[0] for r in rows], [r[1] for r in rows])


def _verdict(accepted: list[int], stored_ids: list[int], texts: list[str]) -> dict:
    return {"accepted": len(accepted), "stored": len(stored_ids),
            "missing": len(set(accepted) - set(stored_ids)),
            "unaccepted_stored": len(set(stored_ids) - set(accepted)),
            # an id answered to two posters: one of them was told of another's comment (Isso
            # reads its new comment back as the thread's MAX(id), after its INSERT has committed)
            "answered_twice": len(accepted) - len(set(accepted)),
            "duplicate_texts": len(texts) - len(set(texts)),
            "exact": sorted(accepted) == sorted(stored_ids) and len(texts) == len(set(texts))}


def run(tmp: Path, *, workers: int, seconds: float, cases=CASES,
        database_url: str | None = None, rounds: int = 4, spam_filter: bool = True) -> dict:
    """Both servers up at once; every case measured in turn, *rounds* times, *seconds*/2 each
    time: on a shared machine the load drifts within a minute, and one long run of each (Parley
    first, Isso after) moved the ratio by 20 % from run to run. With *spam_filter*, Parley's
    learned filter is trained first (bench/spam.py: the public corpus and the site's own
    history), so every post is classified as on a site that uses it."""
    import sqlalchemy as sa

    database_url = database_url or f"sqlite:///{tmp / 'posting.db'}"
    seed.seed_parley(database_url, 0)
    app = seed.parley_app(database_url)
    slugs = add_posts(app, max(case.posts for case in cases))
    ids = post_ids(app, slugs)
    taught = spam.teach_posting_site(app) if spam_filter else None
    if taught:
        print(f"  spam filter taught {taught['corpus']} corpus comments and "
              f"{taught['site_history']} of the site's own", flush=True)
    postgres = None
    if sa.make_url(database_url).get_backend_name() == "postgresql":
        from app.extensions import db

        with app.app_context():
            backend = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
            database = db.session.scalar(sa.text("SELECT current_database()"))
            db.session.remove()
        if Path(f"/proc/{backend}").exists():  # PostgreSQL runs on this machine
            postgres = PostgresCpu(database, backend)
    # 64 readers from one address: no cap on live streams per client IP (as limits are lifted)
    env = common.parley_env(database_url, BENCH_TMP=str(tmp), LIVE_MAX_STREAMS_PER_IP="0")
    thread = "/bench-posting/"
    results: dict[str, dict] = {}
    with (common.gunicorn("app:create_app()", env, workers, name="parley-post") as parley,
          reading.isso_server(tmp, workers) as isso):
        seed.isso_post(isso.url, thread, seed.comment_texts(1)[0])
        sides = {
            "parley": (Meter(parley, postgres), parley_client(parley.url, slugs),
                       lambda run_id, got: account_parley(app, run_id, got)),
            "isso": (Meter(isso, None), isso_client(isso.url, thread),
                     lambda run_id, got: account_isso(isso.db_path, run_id, got)),
        }
        measured: dict[str, list[dict]] = {case.name: [] for case in cases}
        for _ in range(rounds):
            for case in cases:
                meter, client, account = sides[case.side]
                run_id = f"{case.name.replace('_', '')}x{uuid.uuid4().hex[:6]}"
                result = asyncio.run(_campaign(
                    case, client, seconds / 2, run_id, meter,
                    reader_url=lambda t: f"{parley.url}/api/posts/{slugs[t]}/live",
                    stored_count=lambda t: stored_count(app, ids[t])))
                result["accounting"] = account(run_id, result["ids"])
                measured[case.name].append(result)
        for case in cases:
            result = results[case.name] = _combined(case, measured[case.name])
            pg_cpu = (f" + PostgreSQL {result['pg_cpu_ms_per_post']:.2f}"
                      if result["pg_cpu_ms_per_post"] == result["pg_cpu_ms_per_post"] else "")
            readers = result.get("readers")
            heard = (f" readers exact={readers['exact']} ({readers['received']} received, "
                     f"{readers['connections']} connections)" if readers else "")
            print(f"  {case.name:<17} {result['per_second']:>8.1f}/s "
                  f"CPU/post: workers {result['cpu_ms_per_post']:.2f}{pg_cpu}, posters "
                  f"{result['client_cpu_ms_per_post']:.2f} ms; "
                  f"idle {result['idle_pct']:.0f} % "
                  f"rounds {result['rounds']} {result['status']} "
                  f"stored exact={result['accounting']['exact']} "
                  f"answered twice={result['accounting']['answered_twice']}{heard}", flush=True)
    with app.app_context():
        from app.extensions import db

        db.engine.dispose()
    return results
