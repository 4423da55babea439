"""The fresh window (app/fresh.py): a page validated a moment ago, answered without Flask."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.mail import get_mailer
from app.models import Event, Post, User
from tests.conftest import make_app
from tests.test_admin_helpers import csrf_token, make_user, sign_in_admin, sign_in_ordinary
from tests.test_comments import FORM, GUEST, ORIGIN, api_post, configure
from tests.test_page_cache import PAGE, counting_queries


@pytest.fixture
def windowed(app, database_url):
    """A second app on the same database, as a worker of the same site, with the window on."""
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    return make_app(database_url, PAGE_CACHE_FRESH_SECONDS=30)


def test_a_page_validated_a_moment_ago_is_answered_without_the_database(windowed):
    client = windowed.test_client()
    first = client.get(PAGE)
    with counting_queries(windowed) as queries:
        again = client.get(PAGE)
        head = client.head(PAGE)
        revalidated = client.get(PAGE, headers={"If-None-Match": first.headers["ETag"]})
    assert queries == []
    assert first.status_code == again.status_code == head.status_code == 200
    assert again.data == first.data and head.data == b""
    for name in ("ETag", "Cache-Control", "Vary", "Content-Security-Policy",
                 "X-Content-Type-Options", "Referrer-Policy", "Content-Length"):
        assert again.headers[name] == first.headers[name], name
    assert revalidated.status_code == 304 and revalidated.data == b""
    assert revalidated.headers["ETag"] == first.headers["ETag"]
    assert "Cookie" in revalidated.headers["Vary"]


def test_a_change_committed_by_this_worker_shows_on_its_next_request(windowed):
    client = windowed.test_client()
    client.get(PAGE)
    assert api_post(windowed.test_client(), {**GUEST, "comment": "Seen at once."}).status_code == 201
    assert b"Seen at once." in client.get(PAGE).data


def test_another_worker_s_change_shows_within_the_window_and_the_stream_replays_it(
        app, database_url):
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    windowed = make_app(database_url, PAGE_CACHE_FRESH_SECONDS=3)
    reader = windowed.test_client()
    before = reader.get(PAGE).get_data(as_text=True)
    validated_at = time.monotonic()
    assert api_post(app.test_client(), {**GUEST, "comment": "From the other worker."}).status_code == 201

    stale = reader.get(PAGE).get_data(as_text=True)
    assert stale == before  # inside the window: the page as validated a moment ago
    position = stale.split('data-last-event-id="', 1)[1].split('"', 1)[0]
    with windowed.app_context():  # what the page's stream replays after its position
        post = db.session.scalar(sa.select(Post))
        replayed = db.session.scalars(Event.since(post.id, int(position))).all()
    assert any("From the other worker." in e.data for e in replayed)  # so nothing is lost

    time.sleep(max(0.0, validated_at + 3.1 - time.monotonic()))
    assert "From the other worker." in reader.get(PAGE).get_data(as_text=True)


def test_readers_with_something_of_their_own_always_get_a_validated_page(windowed):
    with windowed.app_context():
        user = User(name="Saima", email="saima@example.com")
        db.session.add(user)
        db.session.commit()
        user_id = user.id
    windowed.test_client().get(PAGE)  # the window now holds the anonymous page

    anonymous_session = windowed.test_client()
    anonymous_session.get("/api/session")  # a session cookie, nobody signed in
    signed_in = windowed.test_client()
    sign_in_ordinary(signed_in, user_id)
    author = windowed.test_client()
    posted = author.post(FORM, data={**GUEST, "comment": "My own words."}, headers=ORIGIN)
    assert posted.status_code == 303
    get_mailer(windowed).join()  # its subscriber mail commits too, which empties the window
    windowed.test_client().get(PAGE)  # the window holds the page again, comment included

    with counting_queries(windowed) as queries:
        anonymous_session.get(PAGE)
    assert queries == []
    for client in (signed_in, author):
        with counting_queries(windowed) as queries:
            page = client.get(PAGE)
        assert queries, "went through Flask and the database"
        assert b"My own words." in page.data
    with counting_queries(windowed) as queries:
        windowed.test_client().get(PAGE + "?unapproved=1&moderation-hash=x")
    assert queries


def test_a_change_to_the_post_shows_at_once_in_the_worker_that_made_it(windowed):
    """A moderator closing comments on the post empties the window of the worker that took it
    (the change registers that itself: nothing is inferred from commits)."""
    client = windowed.test_client()
    assert b'name="comment"' in client.get(PAGE).data
    moderator = windowed.test_client()
    sign_in_admin(moderator, make_user(windowed, "mod@example.com", admin=True))
    with windowed.app_context():
        post_id = db.session.scalar(sa.select(Post.id))
    assert moderator.post(f"/admin/posts/{post_id}/comments", data={
        "csrf_token": csrf_token(moderator, "/admin/settings")}).status_code == 303
    assert b'name="comment"' not in client.get(PAGE).data


def test_a_rolled_back_change_leaves_the_window_as_it_was(windowed):
    """Only a committed change empties the window: a comment refused mid-way (rolled back)
    leaves the page held, and no query is needed to answer it again."""
    client = windowed.test_client()
    client.get(PAGE)
    assert api_post(windowed.test_client(), {**GUEST, "comment": ""}).status_code == 400
    with counting_queries(windowed) as queries:
        assert client.get(PAGE).status_code == 200
    assert queries == []


def test_a_revalidation_by_flask_renews_the_page_held_for_its_etag(app, database_url):
    windowed = make_app(database_url, PAGE_CACHE_FRESH_SECONDS=1)
    client = windowed.test_client()
    etag = client.get(PAGE).headers["ETag"]
    time.sleep(1.05)  # the window has lapsed: the next request asks Flask and the database
    with counting_queries(windowed) as asked:
        first = client.get(PAGE, headers={"If-None-Match": etag})
    with counting_queries(windowed) as renewed:
        second = client.get(PAGE, headers={"If-None-Match": etag})
        full = client.get(PAGE)
    assert first.status_code == second.status_code == 304
    assert asked and renewed == []
    assert full.status_code == 200 and full.headers["ETag"] == etag
