"""Growth: page time and SQL queries per page at 10 … 10,000 comments on one post."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import sqlalchemy as sa

from bench import common, seed


def run(tmp: Path, *, sizes=(10, 100, 1000, 10000), repeats: int = 5,
        database_url: str | None = None) -> dict:
    from app.extensions import db

    results = {}
    for size in sizes:
        url = database_url or f"sqlite:///{tmp / f'growth-{size}.db'}"
        # WordPress's paging: 50 top-level comments a page, newest page first (the settings are
        # set so the page picks them up as soon as it honours them).
        seed.seed_parley(url, size, settings={"page_comments": True, "comments_per_page": 50})
        app = seed.parley_app(url, PAGE_CACHE_SIZE=0)
        queries: list[str] = []

        def count(conn, cursor, statement, *args, _queries=queries) -> None:
            _queries.append(statement)

        with app.app_context():
            sa.event.listen(db.engine, "before_cursor_execute", count)
        client = app.test_client()
        client.get(common.PERMALINK)
        times, counts, size_bytes = [], [], 0
        for _ in range(repeats):
            queries.clear()
            started = time.perf_counter()
            response = client.get(common.PERMALINK)
            times.append((time.perf_counter() - started) * 1000)
            counts.append(len(queries))
            size_bytes = len(response.data)
        results[f"growth_{size}"] = {"comments": size, "page_ms": statistics.median(times),
                                     "queries": max(counts), "bytes": size_bytes}
        print(f"  growth {size:>6} comments {statistics.median(times):>8.1f} ms "
              f"{max(counts)} queries {size_bytes:,} bytes", flush=True)
        with app.app_context():
            db.engine.dispose()
    return results
