"""Subscribe, confirm, unsubscribe, and tell confirmed subscribers about new approved comments.

Mail never goes out in the request: notifications are queued after the commit and written on
the mail thread (app.mail), and nothing is sent to an address before it confirms.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, render_template, url_for

from app import limits
from app.database import after_commit
from app.extensions import db
from app.mail import Mail, get_mailer
from app.models import Comment, CommentStatus, Post, Subscription, utcnow
from app.signing import BadLink, Purpose, sign, unsign
from app.urls import post_url, site_url

CONFIRM = Purpose("subscription-confirm", 3 * 24 * 3600,  # three days
                  "This confirmation link has expired. Subscribe again to get a new one.")
# Unsubscribe links never expire: a mail read months later must still let its reader leave.
UNSUBSCRIBE = Purpose("subscription-unsubscribe", None, timed=False)


def confirm_token(subscription: Subscription) -> str:
    return sign(CONFIRM, {"id": subscription.id, "email": subscription.email})


def unsubscribe_token(subscription: Subscription) -> str:
    return sign(UNSUBSCRIBE, {"id": subscription.id, "email": subscription.email})


def load(token: str, *, confirm: bool) -> Subscription:
    """The subscription a confirm or unsubscribe link names, or BadLink."""
    data = unsign(CONFIRM if confirm else UNSUBSCRIBE, token)
    subscription = db.session.get(Subscription, data.get("id")) if isinstance(data, dict) else None
    if subscription is None or subscription.email != data.get("email"):
        raise BadLink("This subscription no longer exists.")
    return subscription


def subscribe(email: str, post: Post | None) -> Subscription | None:
    """Ask *email* to confirm a subscription (comments on *post*, or new posts when None)."""
    email = email.strip().lower()
    if not email:
        return None
    query = sa.select(Subscription).where(Subscription.email == email)
    query = query.where(Subscription.post_id == post.id) if post else query.where(
        Subscription.post_id.is_(None))
    subscription = db.session.scalar(query)
    if subscription is not None and (
            subscription.confirmed_at is not None
            or subscription.created_at > utcnow() - timedelta(minutes=10)):
        return subscription  # already confirmed, or just asked: no second mail
    if subscription is None:
        subscription = Subscription(email=email, post_id=post.id if post else None)
        db.session.add(subscription)
    else:
        subscription.created_at = utcnow()
    db.session.flush()
    sub_id, site, ip = subscription.id, site_url(), limits.client_ip()
    after_commit(lambda: get_mailer().submit(lambda: _send_confirmation(sub_id, site, ip)))
    return subscription


def _send_confirmation(subscription_id: int, site: str, ip: str | None) -> None:
    """Ask the subscriber to confirm, unless the mail limits say this address or the client
    that asked (*ip*) has had enough mail for now: the commenter was answered already, alike."""
    with current_app.test_request_context(base_url=site):
        subscription = db.session.get(Subscription, subscription_id)
        if subscription is None or subscription.confirmed_at is not None:
            return
        if not limits.allow_mail("subscription", to=subscription.email, ip=ip):
            return
        link = url_for("subscriptions.confirm", token=confirm_token(subscription), _external=True)
        what = (f"new comments on “{subscription.post.title}”" if subscription.post
                else f"new posts on {current_app.config['BLOG_TITLE']}")
        context = {"what": what, "link": link, "blog_title": current_app.config["BLOG_TITLE"]}
        get_mailer().deliver(Mail(
            (subscription.email,), f"[{current_app.config['BLOG_TITLE']}] Please confirm: {what}",
            render_template("subscriptions/confirm_mail.txt", **context),
            render_template("subscriptions/confirm_mail.html", **context)))


def confirm(token: str) -> Subscription:
    subscription = load(token, confirm=True)
    if subscription.confirmed_at is None:
        subscription.confirmed_at = utcnow()
        db.session.commit()
    return subscription


def unsubscribe(token: str) -> Subscription:
    subscription = load(token, confirm=False)
    db.session.delete(subscription)
    db.session.commit()
    return subscription


def comment_published(comment: Comment) -> None:
    """After the commit, tell the post's confirmed subscribers about *comment* (once).

    The comment is marked notified in the transaction that publishes it, so a comment approved
    again later is not mailed twice, and the mail job itself only reads (unless it finds the
    comment unpublished, when it takes the mark back): on SQLite a second write transaction per
    comment would double the writers queueing for the database's lock. A new comment comes here
    before it is inserted, so the mark is part of its INSERT.
    """
    if comment.notified_at is not None and sa.inspect(comment).persistent:
        # Published again: its earlier mail job may have found it unpublished since, and taken
        # the mark back (_notify). Read it afresh: this transaction has just written the row.
        db.session.refresh(comment, ["notified_at"])
    if comment.notified_at is not None:
        return
    comment.notified_at = utcnow()
    # Most posts have no subscriber: one indexed lookup here spares them a mail job (a thread
    # hand-off, a pooled connection and two queries) for every comment.
    if db.session.connection().execute(_CONFIRMED, {"post_id": comment.post_id}).first() is None:
        return
    site = site_url()
    # comment.id is read after the commit: a new comment may not have one yet
    after_commit(lambda: get_mailer().submit(lambda comment_id=comment.id: _notify(comment_id, site)))


_UNMARK = sa.update(Comment.__table__).where(
    Comment.id == sa.bindparam("comment_id"), Comment.status != CommentStatus.APPROVED
).values(notified_at=None)

_CONFIRMED = sa.select(Subscription.id).where(
    Subscription.post_id == sa.bindparam("post_id"), Subscription.confirmed_at.is_not(None)
).limit(1)


def _notify(comment_id: int, site: str) -> None:
    comment = db.session.get(Comment, comment_id)
    if comment is None:
        return
    if comment.status != CommentStatus.APPROVED:
        # Unpublished before its mail went out: nobody was told, so the mark goes, and approving
        # it again mails it then. One statement, taken back only while it is still unpublished:
        # an approval that got there first is seen here (nothing cleared) and mailed now.
        cleared = db.session.connection().execute(_UNMARK, {"comment_id": comment_id}).rowcount
        db.session.commit()
        comment = None if cleared else db.session.get(Comment, comment_id, populate_existing=True)
        if comment is None or comment.status != CommentStatus.APPROVED:
            return  # taken back, or deleted meanwhile
    authors = {comment.author_email.lower()}
    if comment.user is not None and comment.user.email:
        authors.add(comment.user.email.lower())
    subscribers = db.session.scalars(sa.select(Subscription).where(
        Subscription.post_id == comment.post_id, Subscription.confirmed_at.is_not(None),
        Subscription.email.not_in(authors))).all()
    if not subscribers:
        return
    with current_app.test_request_context(base_url=site):
        permalink = post_url(comment.post, _external=True) + f"#comment-{comment.id}"
        for subscription in subscribers:
            leave = url_for("subscriptions.unsubscribe", token=unsubscribe_token(subscription),
                            _external=True)
            context = {"comment": comment, "post": comment.post, "permalink": permalink,
                       "unsubscribe": leave, "blog_title": current_app.config["BLOG_TITLE"]}
            get_mailer().deliver(Mail(
                (subscription.email,),
                f"[{current_app.config['BLOG_TITLE']}] New comment on “{comment.post.title}”",
                render_template("subscriptions/comment_mail.txt", **context),
                render_template("subscriptions/comment_mail.html", **context),
                headers=(("List-Unsubscribe", f"<{leave}>"),
                         ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))))

