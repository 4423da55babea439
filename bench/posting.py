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
    elapsed = time.monotonic() - started
    lat = sorted(stats["latencies"]) or [float("nan")]
    return {"posters": posters, "seconds": round(elapsed, 2), "accepted": len(stats["accepted"]),
            "per_second": len(stats["accepted"]) / elapsed, "status": stats["status"],
            "p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
            "max_ms": lat[-1] * 1000,
            "ids": stats["accepted"]}


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
            "duplicate_texts": len(texts) - len(set(texts)),
            "exact": sorted(accepted) == sorted(stored_ids) and len(texts) == len(set(texts))}


def run(tmp: Path, *, workers: int, seconds: float, concurrency=(1, 32),
        database_url: str | None = None) -> dict:
    database_url = database_url or f"sqlite:///{tmp / 'posting.db'}"
    info = seed.seed_parley(database_url, 0)
    app = seed.parley_app(database_url)
    results: dict[str, dict] = {}
    env = common.parley_env(database_url, BENCH_TMP=str(tmp))
    with common.gunicorn("app:create_app()", env, workers, name="parley-post") as server:
        for posters in concurrency:
            run_id = f"parley{posters}x{uuid.uuid4().hex[:6]}"
            result = asyncio.run(_campaign(*parley_client(server.url, info["slug"]), posters,
                                           seconds, run_id))
            result["accounting"] = account_parley(app, run_id, result.pop("ids"))
            results[f"parley_{posters}"] = result
            print(f"  parley  {posters:>2} posters {result['per_second']:>8.1f}/s "
                  f"{result['status']} exact={result['accounting']['exact']}", flush=True)
    with reading.isso_server(tmp, workers) as server:
        thread = "/bench-posting/"
        seed.isso_post(server.url, thread, seed.comment_texts(1)[0])
        for posters in concurrency:
            run_id = f"isso{posters}x{uuid.uuid4().hex[:6]}"
            result = asyncio.run(_campaign(*isso_client(server.url, thread), posters, seconds,
                                           run_id))
            result["accounting"] = account_isso(server.db_path, run_id, result.pop("ids"))
            results[f"isso_{posters}"] = result
            print(f"  isso    {posters:>2} posters {result['per_second']:>8.1f}/s "
                  f"{result['status']} exact={result['accounting']['exact']}", flush=True)
    with app.app_context():
        from app.extensions import db

        db.engine.dispose()
    return results
