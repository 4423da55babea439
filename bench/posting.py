"""Posting: comments accepted per second with 1 and 32 concurrent posters, then exact accounting."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import aiohttp

from bench import common, reading, seed


async def _poster(session: aiohttp.ClientSession, post_one, deadline: float, tag: str,
                  stats: dict) -> None:
    n = 0
    while time.monotonic() < deadline:
        n += 1
        started = time.perf_counter()
        status, comment_id = await post_one(session, f"{tag}-{n}")
        stats["latencies"].append(time.perf_counter() - started)
        stats["status"][status] = stats["status"].get(status, 0) + 1
        if status == 201:
            stats["accepted"].append(comment_id)


async def _campaign(make_session, post_one, posters: int, seconds: float, run: str) -> dict:
    stats = {"status": {}, "accepted": [], "latencies": []}
    sessions = [await make_session() for _ in range(posters)]
    started = time.monotonic()
    deadline = started + seconds
    try:
        await asyncio.gather(*(_poster(s, post_one, deadline, f"{run}-p{i}", stats)
                               for i, s in enumerate(sessions)))
    finally:
        for s in sessions:
            await s.close()
    return {"seconds": time.monotonic() - started, "status": stats["status"],
            "ids": stats["accepted"], "latencies": stats["latencies"]}


def _combined(posters: int, rounds: list[dict]) -> dict:
    """The rounds of one server added up: rate over all of them, percentiles over every post."""
    seconds = sum(r["seconds"] for r in rounds)
    accepted = sum(len(r["ids"]) for r in rounds)
    lat = sorted(x for r in rounds for x in r["latencies"]) or [float("nan")]
    status: dict = {}
    for r in rounds:
        for code, n in r["status"].items():
            status[code] = status.get(code, 0) + n
    accounts = [r["accounting"] for r in rounds]
    return {"posters": posters, "seconds": round(seconds, 2), "accepted": accepted,
            "per_second": accepted / seconds, "status": status,
            "rounds": [round(len(r["ids"]) / r["seconds"], 1) for r in rounds],
            "p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
            "max_ms": lat[-1] * 1000,
            # the server's CPU per accepted post: unlike the rate, it hardly moves with how many
            # cores the posters and the rest of the machine leave free
            "cpu_ms_per_post": sum(r["cpu_s"] for r in rounds) / accepted * 1000 if accepted
            else float("nan"),
            "accounting": {**{k: sum(a[k] for a in accounts) for k in
                              ("accepted", "stored", "missing", "unaccepted_stored",
                               "answered_twice", "duplicate_texts")},
                           "exact": all(a["exact"] for a in accounts)}}


def parley_client(base: str, slug: str):
    url = f"{base}/api/posts/{slug}/comments"
    connector_limit = 64

    async def make_session():
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connector_limit),
                                        cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with session.get(f"{base}/api/session") as response:
            session.headers["X-CSRFToken"] = (await response.json())["csrf_token"]
        return session

    async def post_one(session, text):
        body = {"comment": f"Benchmark comment {text}", "author": f"Poster {text.split('-')[-2]}",
                "email": f"{text.split('-')[-2]}@bench.example.com"}
        async with session.post(url, json=body) as response:
            data = await response.json(content_type=None)
            return response.status, (data.get("comment") or {}).get("id")

    return make_session, post_one


def isso_client(base: str, thread: str):
    async def make_session():
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))

    async def post_one(session, text):
        body = {"text": f"Benchmark comment {text}", "author": f"Poster {text.split('-')[-2]}",
                "email": f"{text.split('-')[-2]}@bench.example.com", "title": "Bench"}
        async with session.post(f"{base}/new?uri={thread}", json=body) as response:
            data = await response.json(content_type=None)
            return response.status, data.get("id") if isinstance(data, dict) else None

    return make_session, post_one


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


def run(tmp: Path, *, workers: int, seconds: float, concurrency=(1, 32),
        database_url: str | None = None, rounds: int = 4) -> dict:
    """Both servers up at once, measured in turn, *rounds* times, *seconds*/2 each time: on a
    shared machine the load drifts within a minute, and one long run of each (Parley first,
    Isso after) moved the ratio by 20 % from run to run."""
    database_url = database_url or f"sqlite:///{tmp / 'posting.db'}"
    info = seed.seed_parley(database_url, 0)
    app = seed.parley_app(database_url)
    results: dict[str, dict] = {}
    env = common.parley_env(database_url, BENCH_TMP=str(tmp))
    thread = "/bench-posting/"
    with (common.gunicorn("app:create_app()", env, workers, name="parley-post") as parley,
          reading.isso_server(tmp, workers) as isso):
        seed.isso_post(isso.url, thread, seed.comment_texts(1)[0])
        sides = {
            "parley": (parley, parley_client(parley.url, info["slug"]),
                       lambda run_id, ids: account_parley(app, run_id, ids)),
            "isso": (isso, isso_client(isso.url, thread),
                     lambda run_id, ids: account_isso(isso.db_path, run_id, ids)),
        }
        for posters in concurrency:
            measured: dict[str, list[dict]] = {name: [] for name in sides}
            for _ in range(rounds):
                for name, (server, client, account) in sides.items():
                    run_id = f"{name}{posters}x{uuid.uuid4().hex[:6]}"
                    cpu = server.worker_cpu_seconds()
                    result = asyncio.run(_campaign(*client, posters, seconds / 2, run_id))
                    result["cpu_s"] = server.worker_cpu_seconds() - cpu
                    result["accounting"] = account(run_id, result["ids"])
                    measured[name].append(result)
            for name, rounds_of_it in measured.items():
                result = results[f"{name}_{posters}"] = _combined(posters, rounds_of_it)
                print(f"  {name:<7} {posters:>2} posters {result['per_second']:>8.1f}/s "
                      f"{result['cpu_ms_per_post']:.2f} ms CPU/post "
                      f"rounds {result['rounds']} {result['status']} "
                      f"exact={result['accounting']['exact']} "
                      f"answered twice={result['accounting']['answered_twice']}", flush=True)
    with app.app_context():
        from app.extensions import db

        db.engine.dispose()
    return results
