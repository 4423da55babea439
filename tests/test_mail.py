"""Moderator mail through a real SMTP server (aiosmtpd), its signed links, and the log fallback."""

from __future__ import annotations

import asyncio
import email
import re
import socket
import threading
import time
from email.message import Message
from email.policy import default as default_policy

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app.comments import service
from app.extensions import db
from app.mail import get_mailer
from app.models import Comment, CommentStatus, Post
from app.moderation import bans
from app.moderation.models import AuditEntry, BanKind
from app.settings import set_setting
from tests.conftest import make_app, reset_database
from tests.test_admin_helpers import ADMIN_EMAIL, add_comment, make_admin, make_user, status_of

GUEST = {"comment": "First time here.", "author": "Hina", "email": "hina@example.com"}
LINK = re.compile(r"http://localhost/admin/mail/[A-Za-z0-9_.\-]+")


class Inbox:
    """An aiosmtpd handler that keeps what it receives (optionally taking its time)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.messages: list[tuple[list[str], Message]] = []
        self.arrived = threading.Event()
        self.port = 0

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append((list(envelope.rcpt_tos), message))
        self.arrived.set()
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_server(delay: float = 0.0):
    inbox = Inbox(delay)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    return controller, inbox


@pytest.fixture
def inbox():
    controller, box = smtp_server()
    yield box
    controller.stop()


@pytest.fixture
def mail_app(database_url, inbox):
    """An app that sends mail to the test SMTP server, with one admin and the default rules."""
    app = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=inbox.port,
                   MAIL_FROM="Parley <parley@blog.example>", ADMIN_EMAILS=["owner@example.com"])
    reset_database(app)
    from app.commands import seed_article

    with app.app_context():
        seed_article()
        set_setting("comment_flood_seconds", 0)
        db.session.commit()
    make_admin(app)
    yield app
    get_mailer(app).join()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def submit(app, data=None, ip="198.51.100.7"):
    with app.app_context():
        post = db.session.scalar(sa.select(Post))
        comment = service.submit(post, {**GUEST, **(data or {})}, ip=ip, user_agent="Firefox").comment
        db.session.commit()
        return comment.id


def wait_for_mail(app, box: Inbox, count: int = 1):
    assert get_mailer(app).join(10)
    deadline = time.time() + 5
    while len(box.messages) < count and time.time() < deadline:
        time.sleep(0.05)
    return box.messages


# --- sending ---------------------------------------------------------------------------------

def test_a_held_comment_mails_every_moderator_with_text_and_html(mail_app, inbox):
    comment_id = submit(mail_app)
    messages = wait_for_mail(mail_app, inbox, 2)
    assert sorted(to for rcpt, _ in messages for to in rcpt) == [ADMIN_EMAIL, "owner@example.com"]
    _, message = messages[0]
    assert message["Subject"] == (
        "[The Express Tribune Blogs] Please moderate: “Pakistan, Russia agree to bury the\xa0hatchet”")
    assert message["From"] == "Parley <parley@blog.example>"
    assert message["Reply-To"] == "hina@example.com"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "Hina" in part and "hina@example.com" in part and "198.51.100.7" in part
        assert "first comment" in part and "First time here." in part
        assert len(set(LINK.findall(part))) == 3
    assert status_of(mail_app, comment_id) is CommentStatus.PENDING


def test_the_commenter_never_waits_for_the_mail_server(database_url):
    controller, slow = smtp_server(delay=2.0)
    try:
        app = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port)
        reset_database(app)
        from app.commands import seed_article

        with app.app_context():
            seed_article()
        make_admin(app)
        client = app.test_client()
        token = client.get("/api/session").get_json()["csrf_token"]
        started = time.perf_counter()
        response = client.post("/api/posts/pakistan-russia-agree-to-bury-the-hatchet/comments",
                               json=GUEST, headers={"X-CSRFToken": token})
        elapsed = time.perf_counter() - started
        assert response.status_code == 201 and response.get_json()["held"] is True
        assert elapsed < 1.0, f"the request took {elapsed:.2f}s: it waited for SMTP"
        assert not slow.messages
        assert wait_for_mail(app, slow)  # ...and the mail still goes out
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        controller.stop()


def test_no_mail_for_approved_comments_banned_authors_or_when_turned_off(mail_app, inbox):
    with mail_app.app_context():
        set_setting("comment_moderation", "nobody")
        db.session.commit()
    submit(mail_app, {"comment": "approved at once"})
    with mail_app.app_context():
        set_setting("comment_moderation", "everyone")
        set_setting("ban_action", "hold")
        bans.add(BanKind.IP, "192.0.2.0/24")
        db.session.commit()
    submit(mail_app, {"comment": "banned, silently held"}, ip="192.0.2.5")
    with mail_app.app_context():
        set_setting("moderation_notify", False)
        db.session.commit()
    submit(mail_app, {"comment": "held, but nobody wants mail"})
    assert wait_for_mail(mail_app, inbox, 1) == []


def test_without_a_mail_server_mail_goes_to_the_log(database_url, caplog):
    app = make_app(database_url)
    reset_database(app)
    from app.commands import seed_article

    with app.app_context():
        seed_article()
    make_admin(app)
    caplog.set_level("INFO", logger="app.mail")
    submit(app)
    assert get_mailer(app).join(10)
    logged = [r.getMessage() for r in caplog.records if r.name == "app.mail"]
    assert len(logged) == 1
    assert "no MAIL_SERVER" in logged[0] and ADMIN_EMAIL in logged[0] and "/admin/mail/" in logged[0]
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_failing_mail_server_does_not_break_anything(database_url, caplog):
    app = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_TIMEOUT=2)
    reset_database(app)
    from app.commands import seed_article

    with app.app_context():
        seed_article()
    make_admin(app)
    comment_id = submit(app)
    assert get_mailer(app).join(10)
    assert status_of(app, comment_id) is CommentStatus.PENDING
    assert any("its mail was not sent" in r.getMessage() for r in caplog.records)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- the links ---------------------------------------------------------------------------------

def links_for(app, box) -> dict[str, str]:
    submit(app)
    messages = wait_for_mail(app, box, 2)
    text = next(m for rcpt, m in messages if rcpt == [ADMIN_EMAIL]).get_body(("plain",)).get_content()
    found = {}
    for line in text.splitlines():
        match = LINK.search(line)
        if match:
            found[line.split(":", 1)[0].split()[0].lower()] = match.group(0).replace(
                "http://localhost", "")
    return found  # {"approve": …, "trash": …, "spam": …}


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


@pytest.mark.parametrize(("action", "status"), [("approve", CommentStatus.APPROVED),
                                                ("trash", CommentStatus.TRASH),
                                                ("spam", CommentStatus.SPAM)])
def test_a_link_confirms_on_get_and_acts_on_post(mail_app, inbox, action, status):
    links = links_for(mail_app, inbox)
    with mail_app.app_context():
        comment_id = db.session.scalar(sa.select(sa.func.max(Comment.id)))
    client = mail_app.test_client()  # not signed in: the signature is the authority
    page = client.get(links[action])
    assert page.status_code == 200
    assert "First time here." in page.get_data(as_text=True)
    assert status_of(mail_app, comment_id) is CommentStatus.PENDING  # a GET changes nothing
    done = client.post(links[action], data={"csrf_token": csrf_of(page.get_data(as_text=True))})
    assert done.status_code == 200 and 'id="mail-done"' in done.get_data(as_text=True)
    assert status_of(mail_app, comment_id) is status
    with mail_app.app_context():
        entry = db.session.scalars(AuditEntry.newest()).first()
        assert entry.actor == f"mail link to {ADMIN_EMAIL}" and entry.comment_id == comment_id
    again = client.post(links[action], data={"csrf_token": csrf_of(page.get_data(as_text=True))})
    assert again.status_code == 409  # the link acts only on the comment as the mail described it


def test_a_link_needs_csrf_on_post(mail_app, inbox):
    links = links_for(mail_app, inbox)
    client = mail_app.test_client()
    client.get(links["approve"])
    assert client.post(links["approve"]).status_code == 400
    with mail_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Comment.id)).where(
            Comment.status == CommentStatus.PENDING)) == 1


def test_a_tampered_link_is_refused(mail_app, inbox):
    links = links_for(mail_app, inbox)
    token = links["trash"].rsplit("/", 1)[1]
    payload, rest = token.split(".", 1)
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + rest
    for path in (f"/admin/mail/{forged}", links["approve"][:-3] + "xyz", "/admin/mail/nonsense"):
        response = mail_app.test_client().get(path)
        assert response.status_code == 400
        assert "not valid" in response.get_data(as_text=True)


def test_an_expired_link_is_refused(mail_app):
    comment_id = add_comment(mail_app, hold_reasons=["first comment"])

    class FourDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 4 * 24 * 3600

    token = URLSafeTimedSerializer(mail_app.config["SECRET_KEY"], salt="parley.moderation-mail",
                                   signer=FourDaysAgo).dumps(
        {"c": comment_id, "a": "approve", "s": "pending", "r": ADMIN_EMAIL})
    client = mail_app.test_client()
    response = client.get(f"/admin/mail/{token}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    response = client.post(f"/admin/mail/{token}", data={"csrf_token": "whatever"})
    assert response.status_code == 400
    assert status_of(mail_app, comment_id) is CommentStatus.PENDING


def test_a_link_for_a_deleted_comment(mail_app, inbox):
    links = links_for(mail_app, inbox)
    with mail_app.app_context():
        db.session.execute(sa.delete(Comment).where(Comment.status == CommentStatus.PENDING))
        db.session.commit()
    assert mail_app.test_client().get(links["approve"]).status_code == 410


def test_an_ordinary_user_cannot_use_a_link_for_anything_else(mail_app, inbox):
    """A link is for one comment and one action: it does not open the admin."""
    links = links_for(mail_app, inbox)
    client = mail_app.test_client()
    client.get(links["approve"])
    make_user(mail_app, "nobody@example.com")
    assert client.get("/admin/").status_code == 302
