"""Likes: one per identity, guests confirmed by mail, the count and avatars live."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Event, Like, User
from tests.smtp import body
from tests.test_comments import csrf_token
from tests.test_subscriptions import settle

LIKES = "/api/posts/pakistan-russia-agree-to-bury-the-hatchet/likes"
PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"


def sign_in(app, client, name="Saima", email="saima@example.com"):
    with app.app_context():
        user = User(name=name, email=email, email_verified=True,
                    avatar_url="https://example.com/saima.png")
        db.session.add(user)
        db.session.commit()
        user_id = user.id
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True
    return user_id


def like_events(app):
    with app.app_context():
        return [e.payload for e in db.session.scalars(
            sa.select(Event).where(Event.kind == "likes").order_by(Event.id))]


def test_the_seed_page_says_three_bloggers_like_this(client):
    assert client.get(LIKES).json["text"] == "3 bloggers like this."


def test_a_signed_in_reader_likes_once_and_can_unlike(app, client):
    sign_in(app, client)
    token = csrf_token(client)
    first = client.post(LIKES, headers={"X-CSRFToken": token}).json
    assert first["count"] == 4 and first["text"] == "4 bloggers like this."
    assert first["likers"][0] == {"name": "Saima", "avatar": "https://example.com/saima.png"}
    assert client.post(LIKES, headers={"X-CSRFToken": token}).json["count"] == 4  # once
    assert client.get(LIKES).json["liked"] is True
    assert 'alt="Saima"' in client.get(PERMALINK).get_data(as_text=True)
    assert client.delete(LIKES, headers={"X-CSRFToken": token}).json["count"] == 3
    assert [e["count"] for e in like_events(app)] == [4, 3]  # live readers saw both
    assert client.post(LIKES).status_code == 400  # no CSRF token


def test_a_guest_like_counts_once_confirmed_by_mail(mailbox):
    app, inbox = mailbox
    client = app.test_client()
    token = csrf_token(client)
    bad = client.post(LIKES, json={"email": "nope"}, headers={"X-CSRFToken": token})
    assert bad.status_code == 400 and "email" in bad.json["fields"]
    response = client.post(LIKES, json={"email": "Guest@Example.com"},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 202
    assert response.json["count"] == 3 and response.json["message"].startswith("Check your email")
    settle(app)
    [mail] = inbox.to("guest@example.com")
    link = re.search(r"http://localhost(/likes/confirm/[\w.\-]+)", body(mail)).group(1)
    assert client.get(link).status_code == 200
    assert client.get(LIKES).json["count"] == 3  # the GET changed nothing
    assert client.post(link, data={"csrf_token": token}).status_code == 200
    assert client.get(LIKES).json == {**client.get(LIKES).json, "count": 4, "liked": True}
    again = client.post(LIKES, json={"email": "guest@example.com"}, headers={"X-CSRFToken": token})
    assert again.json["count"] == 4  # one like per email
    # the browser that confirmed may unlike; another browser may not
    stranger = app.test_client()
    assert stranger.delete(LIKES, headers={"X-CSRFToken": csrf_token(stranger)}).status_code == 404
    assert client.delete(LIKES, headers={"X-CSRFToken": token}).json["count"] == 3
    assert client.get(link[:-2] + "xx").status_code == 400  # a tampered link


def stored_likes(app):
    with app.app_context():
        return db.session.execute(sa.select(Like.email, Like.name).order_by(Like.id)).all()


BIG_BODY = "x" * (256 * 1024 + 1)  # one byte over MAX_CONTENT_LENGTH


@pytest.mark.parametrize("body, field, message", [
    ('{"email": "x\\u0000@example.com"}', "email", "not text"),
    ('{"email": 5}', "email", "Must be text."),
    ('{"email": null}', "email", "Must be text."),
    ('{"email": ["guest@example.com"]}', "email", "Must be text."),
    ('{}', "email", "Please enter your email address."),
    ('{"email": "  "}', "email", "Please enter your email address."),
    ('{"email": "not an address"}', "email", "Please enter a valid email address."),
    # 101 characters: the column holds 100 (SQLite kept it whole; PostgreSQL answered an
    # unnamed 400)
    ('{"email": "%s@example.com"}' % ("a" * 89), "email", "at most 100 characters"),
    # a name that was not text was stored as its Python repr ("{}", "[1]", "None")
    ('{"email": "guest@example.com", "name": {}}', "name", "Must be text."),
    ('{"email": "guest@example.com", "name": [1]}', "name", "Must be text."),
    ('{"email": "guest@example.com", "name": null}', "name", "Must be text."),
    # a NUL was stored on SQLite and an unnamed 400 on PostgreSQL; a lone surrogate was a 500
    ('{"email": "guest@example.com", "name": "A\\u0000B"}', "name", "not text"),
    ('{"email": "guest@example.com", "name": "\\ud800"}', "name", "not text"),
    # 246 characters were cut to 245 without a word
    ('{"email": "guest@example.com", "name": "%s"}' % ("n" * 246), "name", "at most 245"),
])
def test_a_guests_bad_field_is_a_400_naming_it(mailbox, body, field, message):
    app, inbox = mailbox
    client = app.test_client()
    response = client.post(LIKES, data=body, content_type="application/json",
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid" and set(response.json["fields"]) == {field}
    assert message in response.json["fields"][field] and message in response.json["message"]
    settle(app)
    assert stored_likes(app) == [] and inbox.messages == []


@pytest.mark.parametrize("body", ["[" * 100_000, "[1]", '"guest@example.com"', "null", "{",
                                  "email=guest@example.com", ""])
def test_a_body_that_is_not_a_json_object_is_a_400(mailbox, body):
    """`[[[[…` nested 100,000 deep (it fits in 256 KiB) was a 500."""
    app, inbox = mailbox
    client = app.test_client()
    response = client.post(LIKES, data=body, content_type="application/json",
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 400
    assert response.json["error"] == "bad_json" and "JSON object" in response.json["message"]
    settle(app)
    assert stored_likes(app) == [] and inbox.messages == []


def test_a_guest_likes_with_a_name_at_the_limit_trimmed(mailbox):
    app, inbox = mailbox
    client = app.test_client()
    name = "N" * 243
    response = client.post(LIKES, json={"email": " Guest@Example.com\t", "name": f" {name} "},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 202
    assert stored_likes(app) == [("guest@example.com", name)]
    settle(app)
    assert len(inbox.to("guest@example.com")) == 1


def test_a_body_too_large_is_a_413_and_changes_nothing(app, client):
    """Even on DELETE, whose body is read only for a CSRF token."""
    sign_in(app, client)
    token = csrf_token(client)
    assert client.post(LIKES, headers={"X-CSRFToken": token}).json["count"] == 4
    for method in (client.post, client.delete):
        response = method(LIKES, data=BIG_BODY, content_type="application/json",
                          headers={"X-CSRFToken": token})
        assert response.status_code == 413 and response.json["error"] == "request_entity_too_large"
    assert client.get(LIKES).json["count"] == 4


def test_two_likes_at_once_with_one_email_are_one_like(app, client, request):
    """A double click, or two tabs: another request stores the same like between this one's
    look-up and its insert. The unique constraint refuses the second row; the answer is the
    one a pending like gets, not a 500, and one like is stored. (PostgreSQL: SQLite runs one
    writer at a time, so its requests cannot interleave this way.)"""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("the interleaving needs two concurrent writers (PostgreSQL)")
    from sqlalchemy.orm import Session

    raced: list[bool] = []

    def another_request_first(session, flush_context, instances):
        if raced or not any(isinstance(o, Like) for o in session.new):
            return
        raced.append(True)
        with db.engine.begin() as other:  # the other request, a moment earlier
            post_id = other.execute(sa.text("SELECT id FROM posts LIMIT 1")).scalar()
            other.execute(sa.insert(Like.__table__).values(
                post_id=post_id, email="twice@example.com", name="First tab"))

    sa.event.listen(Session, "before_flush", another_request_first)
    request.addfinalizer(lambda: sa.event.remove(Session, "before_flush", another_request_first))
    response = client.post(LIKES, json={"email": "twice@example.com", "name": "Second tab"},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert raced and response.status_code == 202 and response.json["pending"] is True
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Like.id)).where(
            Like.email == "twice@example.com")) == 1
