"""The anonymous page cache (app/blog/cache.py): hits, freshness, and what is never cached."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from app.comments import service
from app.extensions import db
from app.models import Comment, CommentStatus, Post, User
from app.moderation.models import Actor
from tests.test_comments import FORM, GUEST, api_post, configure

PAGE = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"
ORIGIN = {"Origin": "http://localhost"}


@contextmanager
def counting_queries(app):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


@pytest.fixture(autouse=True)
def mail_sent_before_teardown(app):
    """Accepted comments queue subscriber mail on a thread: let it finish before the pool closes."""
    yield
    from app.mail import get_mailer

    get_mailer(app).join()


@pytest.fixture
def open_door(app):
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)


def test_a_second_anonymous_request_is_served_from_the_cache(app, client):
    with counting_queries(app) as first:
        miss = client.get(PAGE)
    with counting_queries(app) as second:
        hit = client.get(PAGE)
    assert miss.status_code == hit.status_code == 200
    assert hit.data == miss.data and hit.headers["ETag"] == miss.headers["ETag"]
    assert len(second) <= 3 < len(first), (len(first), len(second))  # the key, nothing rendered
    assert hit.headers["Cache-Control"] == "public, no-cache"
    assert "Cookie" in hit.headers["Vary"] and "Cookie" in miss.headers["Vary"]
    front = app.test_client()
    assert front.get("/").data == front.get("/").data  # the front page is cached as well


def test_revalidation_answers_304_and_a_change_moves_the_etag(app, client, open_door):
    etag = client.get(PAGE).headers["ETag"]
    again = client.get(PAGE, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert "Cookie" in again.headers["Vary"]
    assert api_post(app.test_client(), {**GUEST, "comment": "moves the etag"}).status_code == 201
    fresh = client.get(PAGE, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and b"moves the etag" in fresh.data
    assert fresh.headers["ETag"] != etag


def _comment(app, text: str) -> Comment:
    with app.app_context():
        return db.session.scalar(sa.select(Comment).where(Comment.content == text))


def test_every_change_shows_on_the_very_next_request(app, client, open_door):
    client.get(PAGE)  # cached
    assert api_post(app.test_client(), {**GUEST, "comment": "a new approved one"}).status_code == 201
    assert b"a new approved one" in client.get(PAGE).data

    comment_id = _comment(app, "a new approved one").id
    with app.app_context():  # an edit
        comment = db.session.get(Comment, comment_id)
        service.moderator_edit(comment, Actor(None, "a moderator"), content="an edited one",
                               author=comment.author_name, email=comment.author_email,
                               url=comment.author_url)
        db.session.commit()
    page = client.get(PAGE).data
    assert b"an edited one" in page and b"a new approved one" not in page

    with app.app_context():  # a removal
        service.set_status(db.session.get(Comment, comment_id), CommentStatus.TRASH)
        db.session.commit()
    assert b"an edited one" not in client.get(PAGE).data

    with app.test_request_context():  # a like
        from app.likes import _record_change

        post = db.session.scalar(sa.select(Post))
        before = post.like_count
        _record_change(post, +1)
        db.session.commit()
    text = client.get(PAGE).get_data(as_text=True)
    assert f"{before + 1:,} bloggers like this" in text

    assert b"Comments are closed." not in client.get(PAGE).data
    configure(app, close_comments_for_old_posts=True, close_comments_days_old=14)  # a setting
    assert b"Comments are closed." in client.get(PAGE).data


def _sign_in(app, client) -> None:
    with app.app_context():
        user = User(name="Signed-in Sara", email="sara@example.com", email_verified=True)
        db.session.add(user)
        db.session.commit()
        user_id = user.id
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True


def test_signed_in_readers_are_never_cached_and_never_poison_the_cache(app, client):
    reader = app.test_client()
    _sign_in(app, reader)
    first = reader.get(PAGE)  # the first render of this page is a signed-in one
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "private, no-store" and "ETag" not in first.headers
    anonymous = client.get(PAGE)
    assert b"Signed-in Sara" not in anonymous.data
    assert anonymous.headers["Cache-Control"] == "public, no-cache"
    # and a signed-in reader never gets the anonymous bytes from the cache
    again = reader.get(PAGE, headers={"If-None-Match": anonymous.headers["ETag"]})
    assert again.status_code == 200 and again.headers["Cache-Control"] == "private, no-store"


def test_unapproved_links_are_never_cached_and_never_poison_the_cache(app, client):
    response = client.post(FORM, data={**GUEST, "comment": "held for me only"}, headers=ORIGIN)
    link = response.headers["Location"].split("#")[0]
    assert "unapproved=" in link
    mine = client.get(link)
    assert b"held for me only" in mine.data
    assert mine.headers["Cache-Control"] == "private, no-store" and "ETag" not in mine.headers
    for other in (app.test_client(), client):
        assert b"held for me only" not in other.get(PAGE).data
    # a forged hash renders the public page, and that is what is cached for the plain address
    forged = re.sub(r"moderation-hash=\w+", "moderation-hash=0", link)
    assert b"held for me only" not in client.get(forged).data
    assert b"held for me only" not in app.test_client().get(PAGE).data


def test_error_re_renders_are_never_cached_and_never_poison_the_cache(app, client):
    client.get(PAGE)
    typed = {"comment": "a draft nobody else may see", "author": "", "email": "bad"}
    response = client.post(FORM, data=typed, headers=ORIGIN)
    assert response.status_code == 400 and b"a draft nobody else may see" in response.data
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "ETag" not in response.headers
    for reader in (client, app.test_client()):
        page = reader.get(PAGE)
        assert page.status_code == 200 and b"a draft nobody else may see" not in page.data
    refused = client.post(FORM, data={**GUEST, "comment": "cross-site draft"},
                          headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.headers["Cache-Control"] == "private, no-store"
    assert b"cross-site draft" not in app.test_client().get(PAGE).data


def test_a_post_from_another_address_is_not_served_from_this_ones_entry(app, client):
    assert client.get(PAGE).status_code == 200
    assert client.get("/2011/01/26/pakistan-russia-agree-to-bury-the-hatchet/").status_code == 404
    assert client.get(PAGE + "?utm=x").headers["ETag"] != client.get(PAGE).headers["ETag"]


def test_no_page_cache_when_turned_off(database_url):
    from tests.conftest import make_app, reset_database

    app = make_app(database_url, PAGE_CACHE_SIZE=0)
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    client = app.test_client()
    client.get(PAGE)
    with counting_queries(app) as second:
        assert client.get(PAGE).status_code == 200
    assert len(second) > 3
    with app.app_context():
        db.engine.dispose()
