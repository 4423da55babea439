"""Moderator mail: a message for each comment the rules hold, with signed, expiring action links.

Driven by the database session, not by views: a held comment is noticed when it is flushed and
mailed after its transaction commits, on the mail thread — so whichever door a comment came in by,
the commenter's request never waits for SMTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context, render_template, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.extensions import db
from app.mail import get_mailer, send_mail
from app.models import Comment, CommentStatus, User
from app.urls import post_url

_HELD = "parley.moderation.held"
_SALT = "parley.moderation-mail"
MAIL_ACTIONS = ("approve", "spam", "trash")
DEFAULT_LINK_MAX_AGE = 3 * 24 * 3600  # three days


# --- signed links ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LinkClaim:
    comment_id: int
    action: str
    status: str  # the comment's state when the mail was sent: the link acts only on that state
    recipient: str


class BadLink(Exception):
    """A mail link that is expired, tampered with or malformed; the message says which."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def sign_link(comment: Comment, action: str, recipient: str) -> str:
    if action not in MAIL_ACTIONS:
        raise ValueError(action)
    return _serializer().dumps({"c": comment.id, "a": action, "s": comment.status.value,
                                "r": recipient})


def read_link(token: str) -> LinkClaim:
    """The claim in *token*, or BadLink."""
    max_age = int(current_app.config.get("MODERATION_LINK_MAX_AGE", DEFAULT_LINK_MAX_AGE))
    try:
        data: Any = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise BadLink("This link has expired. Sign in to moderate the comment instead.") from None
    except BadSignature:
        raise BadLink("This link is not valid. Check that it was copied whole.") from None
    try:
        claim = LinkClaim(int(data["c"]), str(data["a"]), str(data["s"]), str(data["r"]))
    except (KeyError, TypeError, ValueError):
        raise BadLink("This link is not valid.") from None
    if claim.action not in MAIL_ACTIONS:
        raise BadLink("This link is not valid.")
    return claim


# --- noticing held comments -----------------------------------------------------------------

def _after_flush(session, flush_context) -> None:
    for obj in session.new:
        if (isinstance(obj, Comment) and obj.status is CommentStatus.PENDING and obj.hold_reasons
                and not any(r.startswith("banned ") for r in obj.hold_reasons)):
            session.info.setdefault(_HELD, set()).add(obj.id)


def _after_commit(session) -> None:
    held = session.info.pop(_HELD, None)
    if not held:
        return
    try:
        app = current_app._get_current_object()
    except RuntimeError:  # no application: nobody to tell
        return
    base_url = request.url_root if has_request_context() else (app.config.get("SITE_URL") or "")
    ids = sorted(held)
    get_mailer(app).submit(lambda: notify_held(ids, base_url))


def _after_rollback(session, previous_transaction=None) -> None:
    session.info.pop(_HELD, None)


def install_session_hooks() -> None:
    from sqlalchemy.orm import Session

    if not sa.event.contains(Session, "after_commit", _after_commit):
        sa.event.listen(Session, "after_flush", _after_flush)
        sa.event.listen(Session, "after_commit", _after_commit)
        sa.event.listen(Session, "after_soft_rollback", _after_rollback)


# --- the message -------------------------------------------------------------------------------

def moderator_emails() -> list[str]:
    """Every admin with an email address, and ADMIN_EMAILS."""
    found = db.session.scalars(sa.select(User.email).where(User.is_admin.is_(True),
                                                           User.email.is_not(None)))
    emails = [e.strip().lower() for e in found if e and e.strip()]
    emails += current_app.config.get("ADMIN_EMAILS") or []
    return list(dict.fromkeys(emails))


def notify_held(ids: list[int], base_url: str) -> None:
    """Mail every moderator about the held comments *ids* (runs on the mail thread)."""
    from app.settings import get_setting

    try:
        if not get_setting("moderation_notify"):
            return
        recipients = moderator_emails()
        comments = db.session.scalars(sa.select(Comment).where(
            Comment.id.in_(ids), Comment.status == CommentStatus.PENDING)).all()
        for comment in comments:
            for recipient in recipients:
                with current_app.test_request_context(base_url=base_url or None):
                    _send_one(comment, recipient)
    finally:
        db.session.remove()


def _send_one(comment: Comment, recipient: str) -> None:
    links = {action: url_for("admin.mail_action", token=sign_link(comment, action, recipient),
                             _external=True) for action in MAIL_ACTIONS}
    context = {
        "comment": comment,
        "post": comment.post,
        "links": links,
        "post_link": post_url(comment.post, _external=True),
        "queue_link": url_for("admin.comments", status="pending", _external=True),
        "max_age_hours": int(current_app.config.get("MODERATION_LINK_MAX_AGE",
                                                    DEFAULT_LINK_MAX_AGE)) // 3600,
    }
    subject = f"[{current_app.config['BLOG_TITLE']}] Please moderate: “{comment.post.title}”"
    send_mail(recipient, subject, render_template("admin/mail/held.txt", **context),
              render_template("admin/mail/held.html", **context),
              reply_to=comment.author_email or None)
