"""Moderator mail: a message for each comment the rules hold, with signed, expiring action links.

The comment gate (app/comments/service.py) asks for it when the rules hold a comment; the mail
goes after the transaction commits, on the mail thread, so whichever door a comment came in by,
the commenter's request never waits for SMTP, and a change rolled back mails nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, render_template, url_for

from app import limits
from app.database import after_commit
from app.extensions import db
from app.mail import get_mailer, send_mail
from app.models import Comment, CommentStatus, User
from app.settings import get_setting
from app.signing import BadLink, Purpose, sign, unsign
from app.urls import post_url, site_url

_HELD = "parley.moderation.held"
MAIL_ACTIONS = ("approve", "spam", "trash")
MAIL_LINK = Purpose("parley.moderation-mail", 3 * 24 * 3600,  # MODERATION_LINK_MAX_AGE
                    "This link has expired. Sign in to moderate the comment instead.")


# --- signed links ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LinkClaim:
    comment_id: int
    action: str
    status: str  # the comment's state when the mail was sent: the link acts only on that state
    recipient: str
    stamp: int  # when the comment was made (Comment.stamp): a later comment with its id is another


def sign_link(comment: Comment, action: str, recipient: str) -> str:
    if action not in MAIL_ACTIONS:
        raise ValueError(action)
    return sign(MAIL_LINK, {"c": comment.id, "a": action, "s": comment.status.value,
                            "r": recipient, "t": comment.stamp})


def read_link(token: str) -> LinkClaim:
    """The claim in *token*, or BadLink."""
    data: Any = unsign(MAIL_LINK, token, max_age=current_app.config["MODERATION_LINK_MAX_AGE"])
    try:
        claim = LinkClaim(int(data["c"]), str(data["a"]), str(data["s"]), str(data["r"]),
                          int(data["t"]))
    except (KeyError, TypeError, ValueError):
        raise BadLink("This link is not valid.") from None
    if claim.action not in MAIL_ACTIONS:
        raise BadLink("This link is not valid.")
    return claim


# --- held comments, mailed after the commit ------------------------------------------------

class _HeldMail:
    """The moderator mail of one transaction: the comments it held, sent after it commits."""

    def __init__(self, app: Flask, base_url: str) -> None:
        self.app = app
        self.base_url = base_url
        self.ids: list[int] = []

    def __call__(self) -> None:
        ids, base_url = sorted(set(self.ids)), self.base_url
        with self.app.app_context():
            get_mailer(self.app).submit(lambda: notify_held(ids, base_url))


def comment_held(comment: Comment) -> None:
    """Mail the moderators about *comment*, which the rules have just held, once the change
    commits (one mail job per transaction; nothing if it rolls back). A banned author's comment
    held in silence is not mailed."""
    if not comment.hold_reasons or any(r.startswith("banned ") for r in comment.hold_reasons):
        return
    app = current_app._get_current_object()
    base_url = site_url()
    mail = after_commit(_HeldMail(app, base_url), key=_HELD)
    mail.ids.append(comment.id)


# --- the message -------------------------------------------------------------------------------

def moderator_emails() -> list[str]:
    """Every admin with an email address, and ADMIN_EMAILS."""
    found = db.session.scalars(sa.select(User.email).where(User.is_admin.is_(True),
                                                           User.email.is_not(None)))
    emails = [e.strip().lower() for e in found if e and e.strip()]
    emails += current_app.config["ADMIN_EMAILS"]
    return list(dict.fromkeys(emails))


def notify_held(ids: list[int], base_url: str) -> None:
    """Mail every moderator about the held comments *ids* (runs on the mail thread)."""
    try:
        if not get_setting("moderation_notify"):
            return
        recipients = moderator_emails()
        comments = db.session.scalars(sa.select(Comment).where(
            Comment.id.in_(ids), Comment.status == CommentStatus.PENDING)).all()
        for comment in comments:
            # A flood of held comments from one address must not flood the moderators: past
            # MAIL_LIMIT_PER_IP they stay in the queue (and reach open queues live) unmailed.
            if not recipients or not limits.allow_mail("moderation", ip=comment.ip):
                continue
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
        "max_age_hours": int(current_app.config["MODERATION_LINK_MAX_AGE"]) // 3600,
    }
    subject = f"[{current_app.config['BLOG_TITLE']}] Please moderate: “{comment.post.title}”"
    send_mail(recipient, subject, render_template("admin/mail/held.txt", **context),
              render_template("admin/mail/held.html", **context),
              reply_to=comment.author_email or None)
