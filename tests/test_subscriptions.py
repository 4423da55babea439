"""Comment subscriptions by email, against a real SMTP server: double opt-in, notify, leave."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.extensions import db
from app.mail import get_mailer
from app.models import Comment, CommentStatus, Subscription
from tests.conftest import make_app, reset_database
from tests.smtp import body
from tests.test_comments import API, configure, csrf_token


def post(app, client, text, email, name="Reader", **extra):
    response = client.post(API, json={"comment": text, "author": name, "email": email, **extra},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 201, response.json
    return response.json["comment"]["id"]


def settle(app):
    assert get_mailer(app).join(10)


def link(message, path):
    found = re.search(rf"http://localhost{path}[\w.\-]+", body(message))
    assert found, body(message)
    return found.group(0).replace("http://localhost", "")


def test_double_opt_in_then_notifications_for_approved_comments_only(mailbox):
    app, inbox = mailbox
    client = app.test_client()
    post(app, client, "Keep me posted", "fan@example.com", subscribe_comments=True)
    settle(app)
    [confirmation] = inbox.to("fan@example.com")
    assert "Please confirm" in confirmation["Subject"]
    assert body(confirmation, "html")  # plain text and HTML parts

    # nothing is sent before the address confirms
    post(app, client, "Before you confirmed", "other@example.com", name="Other")
    settle(app)
    assert len(inbox.to("fan@example.com")) == 1

    confirm = link(confirmation, "/subscriptions/confirm/")
    page = client.get(confirm)
    assert page.status_code == 200 and "Confirm your subscription" in page.get_data(as_text=True)
    with app.app_context():  # a GET changes nothing
        assert db.session.scalar(sa.select(Subscription.confirmed_at)) is None
    token = csrf_token(client)
    assert client.post(confirm, data={"csrf_token": token}).status_code == 200

    post(app, client, "After you confirmed", "other@example.com", name="Other")
    settle(app)
    notice = inbox.to("fan@example.com")[-1]
    assert "New comment on" in notice["Subject"]
    assert "After you confirmed" in body(notice) and "After you confirmed" in body(notice, "html")
    assert notice["List-Unsubscribe"].startswith("<http://localhost/subscriptions/unsubscribe/")
    assert notice["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "other@example.com" not in body(notice)  # the commenter's email stays private

    # never about one's own comment, never about a held one
    before = len(inbox.to("fan@example.com"))
    post(app, client, "My own words", "fan@example.com")
    configure(app, comment_moderation="everyone")
    held = post(app, client, "Held for now", "third@example.com", name="Third")
    settle(app)
    assert len(inbox.to("fan@example.com")) == before

    # approved later: the subscriber hears of it then, once
    from app.comments import service

    with app.app_context():
        comment = db.session.get(Comment, held)
        service.set_status(comment, CommentStatus.APPROVED)
        db.session.commit()
        service.set_status(comment, CommentStatus.PENDING)
        db.session.commit()
        service.set_status(comment, CommentStatus.APPROVED)
        db.session.commit()
    settle(app)
    assert [body(m).count("Held for now") for m in inbox.to("fan@example.com")[before:]] == [1]

    # one-click unsubscribe, as a mail client does it (no CSRF token, no cookies)
    leave = notice["List-Unsubscribe"].strip("<>").replace("http://localhost", "")
    response = app.test_client().post(leave, data="List-Unsubscribe=One-Click",
                                      content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    configure(app, comment_moderation="nobody")
    count = len(inbox.to("fan@example.com"))
    post(app, client, "After you left", "other@example.com", name="Other")
    settle(app)
    assert len(inbox.to("fan@example.com")) == count


def test_a_comment_unapproved_before_its_mail_and_approved_again_is_mailed_once(mailbox):
    """The mail job for an approved comment may run after a moderator has unapproved it (it then
    sends nothing) and before they approve it again: the subscriber still hears of it, once."""
    import threading

    from app.comments import service

    app, inbox = mailbox
    client = app.test_client()
    post(app, client, "Keep me posted", "fan@example.com", subscribe_comments=True)
    settle(app)
    confirm = link(inbox.to("fan@example.com")[0], "/subscriptions/confirm/")
    assert client.post(confirm, data={"csrf_token": csrf_token(client)}).status_code == 200
    configure(app, comment_moderation="everyone")
    held = post(app, client, "Held for now", "third@example.com", name="Third")
    settle(app)
    before = len(inbox.to("fan@example.com"))

    mailer, release = get_mailer(app), threading.Event()
    mailer.submit(lambda: release.wait(10))  # the mail thread is busy: the next job waits
    with app.app_context():
        comment = db.session.get(Comment, held)
        service.set_status(comment, CommentStatus.APPROVED)  # its mail job is queued...
        db.session.commit()
        service.set_status(comment, CommentStatus.PENDING)  # ...and runs while it is held
        db.session.commit()
        release.set()
        settle(app)
        assert len(inbox.to("fan@example.com")) == before  # nothing about a held comment
        service.set_status(comment, CommentStatus.APPROVED)
        db.session.commit()
    settle(app)
    assert [body(m).count("Held for now") for m in inbox.to("fan@example.com")[before:]] == [1]


def test_tampered_and_unknown_links_are_refused(mailbox):
    app, inbox = mailbox
    client = app.test_client()
    post(app, client, "Sign me up", "fan@example.com", subscribe_comments=True)
    settle(app)
    confirm = link(inbox.to("fan@example.com")[0], "/subscriptions/confirm/")
    tampered = confirm[:-3] + ("aaa" if not confirm.endswith("aaa") else "bbb")
    response = client.get(tampered)
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)
    assert client.post("/subscriptions/unsubscribe/forged").status_code == 400


def test_expired_confirmation_link(mailbox, monkeypatch):
    app, inbox = mailbox
    client = app.test_client()
    post(app, client, "Sign me up", "fan@example.com", subscribe_comments=True)
    settle(app)
    confirm = link(inbox.to("fan@example.com")[0], "/subscriptions/confirm/")
    from app.subscriptions import service

    monkeypatch.setattr(service, "CONFIRM", service.CONFIRM.__class__(
        service.CONFIRM.salt, -1, service.CONFIRM.expired))
    response = client.get(confirm)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_new_posts_subscription_is_stored_and_confirmed_separately(mailbox):
    app, inbox = mailbox
    client = app.test_client()
    post(app, client, "Tell me about new posts", "fan@example.com", subscribe_blog=True)
    settle(app)
    [message] = inbox.to("fan@example.com")
    assert "new posts on" in message["Subject"]
    with app.app_context():
        [sub] = db.session.scalars(sa.select(Subscription)).all()
        assert sub.post_id is None and sub.confirmed_at is None


def test_posting_does_not_wait_for_the_mail_server(database_url):
    """A mail server that never answers must not slow the commenter down."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, then says nothing
    app = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=silent.getsockname()[1],
                   MAIL_TIMEOUT=3)
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    configure(app, comment_flood_seconds=0, comment_moderation="nobody")
    client = app.test_client()
    started = time.monotonic()
    post(app, client, "Quick", "fan@example.com", subscribe_comments=True)
    assert time.monotonic() - started < 1.5
    get_mailer(app).join(10)
    silent.close()
    with app.app_context():
        db.engine.dispose()
