"""Comment pages and order, as WordPress's Discussion settings have them."""

from __future__ import annotations

import gc
import re
import weakref
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from app.comments.threads import build_thread
from app.extensions import db
from app.models import Comment, CommentStatus, Post, utcnow
from tests.test_article import PERMALINK
from tests.test_comments import FORM, GUEST, ORIGIN, configure

SEED_ID = 1


def add_threads(app, count, replies_each=1):
    """*count* more top-level comments (one minute apart, after the seed's), each with replies."""
    with app.app_context():
        post = db.session.scalar(sa.select(Post))
        start = utcnow() - timedelta(days=1)
        for i in range(count):
            root = Comment(post_id=post.id, author_name=f"Root {i}", author_email="r@example.com",
                           content=f"root {i}", content_html=f"<p>root {i}</p>",
                           status=CommentStatus.APPROVED, created_at=start + timedelta(minutes=i))
            db.session.add(root)
            db.session.flush()
            for j in range(replies_each):
                db.session.add(Comment(
                    post_id=post.id, parent_id=root.id, author_name=f"Reply {i}.{j}",
                    author_email="x@example.com", content=f"reply {i}.{j}",
                    content_html=f"<p>reply {i}.{j}</p>", status=CommentStatus.APPROVED,
                    created_at=start + timedelta(minutes=i, seconds=30 + j)))
        db.session.commit()


def shown(html):
    return re.findall(r"<p>((?:root|reply) [\d.]+)</p>", html)


def test_pages_of_threads_newest_page_first(app, client):
    add_threads(app, 4)  # with the seed's comment: 5 threads, 9 comments
    configure(app, page_comments=True, comments_per_page=2)
    html = client.get(PERMALINK).get_data(as_text=True)
    assert shown(html) == ["root 3", "reply 3.0"]  # page 3 of 3: the newest thread
    assert "9 comments" in html and "Page 3 of 3" in html
    assert f'href="{PERMALINK}comment-page-2/#comments">&larr; Older Comments' in html
    first = client.get(PERMALINK + "comment-page-1/").get_data(as_text=True)
    assert shown(first) == ["root 0", "reply 0.0"] and "There is little possibility" in first
    assert 'Newer Comments &rarr;' in first
    assert client.get(PERMALINK + "comment-page-4/").status_code == 404
    assert client.get(PERMALINK + "comment-page-0/").status_code == 404


def test_oldest_page_first_and_newest_threads_at_the_top(app, client):
    add_threads(app, 4)
    configure(app, page_comments=True, comments_per_page=2, default_comments_page="oldest")
    assert shown(client.get(PERMALINK).get_data(as_text=True)) == ["root 0", "reply 0.0"]
    configure(app, page_comments=False, comment_order="desc")
    html = client.get(PERMALINK).get_data(as_text=True)
    roots = [s for s in shown(html) if s.startswith("root")]
    assert roots == ["root 3", "root 2", "root 1", "root 0"]
    assert 'data-order="desc"' in html


def test_queries_per_page_do_not_grow_with_the_comments(app, client):
    configure(app, page_comments=True, comments_per_page=5)

    def queries_for_page():
        statements = []
        with app.app_context():
            engine = db.engine

        def count(*args):
            statements.append(args[2])

        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get(PERMALINK).status_code == 200
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    app.config["PAGE_CACHE_SIZE"] = 0  # count the queries of a real render, not a cache hit
    add_threads(app, 10, replies_each=2)
    small = queries_for_page()
    add_threads(app, 100, replies_each=3)
    assert 0 < queries_for_page() == small


# SQLite's query plans only: PostgreSQL's planner chooses by the table's statistics, and a test
# table of a few rows says nothing about a post with thousands.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_page_of_threads_is_read_in_index_order_not_sorted(app, client):
    """A post with 10,000 comments took 11.5 ms a page, 9 ms of it sorting every top-level
    comment to find one page's; read in index order, 1.8 ms (docs/benchmarks.md)."""
    configure(app, page_comments=True, comments_per_page=5)
    app.config["PAGE_CACHE_SIZE"] = 0
    add_threads(app, 12, replies_each=2)
    statements = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, parameters, *args):
        if "parent_id IS NULL" in statement:  # the ones that look for top-level comments
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(PERMALINK).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 2  # the pages' count and the page's threads
    with engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            # (id, parent, _, detail): only the outermost sort, of this page's few threads, may be
            # a sort; finding the page's top-level comments must not be one
            nested_sorts = [row for row in plan if "TEMP B-TREE" in row[3] and row[1] != 0]
            assert nested_sorts == [], plan
            # nor may any step read every comment of the post (all of them, or by post and status)
            reads_all = [row for row in plan if row[3].startswith("SCAN comments")
                         or "ix_comments_post_status_id" in row[3]]
            assert reads_all == [], plan


def test_a_reply_on_an_older_page_redirects_to_that_page(app, client):
    add_threads(app, 4)
    configure(app, page_comments=True, comments_per_page=2, comment_moderation="nobody",
              comment_flood_seconds=0)
    response = client.post(FORM, data={**GUEST, "comment": "Late reply", "comment_parent": SEED_ID},
                           headers=ORIGIN)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert re.search(r"/comment-page-1/#comment-\d+$", location), location
    assert "Late reply" in client.get(location.split("#")[0]).get_data(as_text=True)


@pytest.mark.parametrize("per_page", [1, 50])
def test_without_paging_the_permalink_shows_everything(app, client, per_page):
    add_threads(app, 3)
    configure(app, comments_per_page=per_page)
    assert len(shown(client.get(PERMALINK).get_data(as_text=True))) == 6
    assert client.get(PERMALINK + "comment-page-2/").status_code == 404


def test_a_pages_thread_is_freed_when_the_page_is_done():
    """No reference cycles: a page's tree of 200 comments went to the garbage collector, which
    stopped the worker for milliseconds every few dozen pages, instead of being freed at once."""
    comments = [SimpleNamespace(id=1, parent_id=None), SimpleNamespace(id=2, parent_id=1),
                SimpleNamespace(id=3, parent_id=2), SimpleNamespace(id=4, parent_id=3)]
    gc.disable()
    try:
        roots = build_thread(comments, 2)
        # the depth limit still holds: 3 and 4 join 2's level, under 1
        assert [[c.comment.id for c in r.children] for r in roots] == [[2, 3, 4]]
        deepest = weakref.ref(roots[0].children[-1])
        del roots
        assert deepest() is None
    finally:
        gc.enable()
