"""In-process CPU per post and per uncached page: a test client, one SQLite file, 200 comments.

For an A/B between two checkouts without servers or Isso: run
`PYTHONPATH=. .venv/bin/python bench/inprocess.py LABEL` in each and compare the medians. It
reads process CPU time, so a busy machine matters less than it does to the servers' rows.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import sqlalchemy as sa

from bench.seed import parley_app, seed_parley

POSTS, PAGES, ROUNDS = 100, 50, 5


def main(label: str) -> None:
    url = f"sqlite:///{tempfile.mkdtemp()}/inprocess.db"
    seed_parley(url, 200, settings={"comment_moderation": "nobody", "comment_flood_seconds": 0})
    app = parley_app(url, RATELIMIT_ENABLED=False, PAGE_CACHE_SIZE=0)
    client = app.test_client()
    with app.test_request_context():
        from app.extensions import db  # after parley_app: the checkout's own package
        from app.models import Post
        from app.urls import post_url

        post = db.session.scalar(sa.select(Post))
        api, page = f"/api/posts/{post.slug}/comments", post_url(post)
    token = client.get("/api/session").json["csrf_token"]
    sent = iter(range(10**9))

    def one_post() -> None:
        n = next(sent)
        answer = client.post(api, headers={"X-CSRFToken": token}, json={
            "comment": f"Bench comment number {n} with some words", "author": f"A{n}",
            "email": f"a{n}@example.com"})
        assert answer.status_code == 201, answer.data

    def per_call(call, count: int) -> list[float]:
        for _ in range(count // 3):  # warm up
            call()
        times = []
        for _ in range(ROUNDS):
            started = time.process_time()
            for _ in range(count):
                call()
            times.append((time.process_time() - started) / count * 1000)
        return times

    posts = per_call(one_post, POSTS)
    pages = per_call(lambda: client.get(page), PAGES)
    print(f"{label}: CPU per post {statistics.median(posts):.3f} ms "
          f"{[round(t, 2) for t in posts]}; per uncached page {statistics.median(pages):.3f} ms "
          f"{[round(t, 2) for t in pages]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
