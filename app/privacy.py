"""A commenter's own data (GDPR): by a signed, expiring link sent to their email, list it,
download it as JSON, or erase it — erasing only after they confirm on the page."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import Blueprint, current_app, jsonify, render_template, request, url_for

from app import limits
from app.comments import service
from app.extensions import db
from app.mail import Mail, get_mailer
from app.models import Comment, Like, Post, Subscription
from app.signing import BadLink, Purpose, sign, unsign
from app.urls import site_url

bp = Blueprint("privacy", __name__, url_prefix="/my-comments")
MY_COMMENTS = Purpose("my-comments", 3600,  # an hour
                      "This link has expired (links work for an hour). Ask for a new one.")


def _email_from(token: str) -> str:
    data = unsign(MY_COMMENTS, token)
    if not isinstance(data, dict) or not isinstance(data.get("email"), str):
        raise BadLink("This link is not valid.")
    return data["email"]


def _comments_of(email: str) -> list[Comment]:
    return list(db.session.scalars(sa.select(Comment).where(
        sa.func.lower(Comment.author_email) == email).order_by(Comment.created_at, Comment.id)))


@bp.route("/", methods=["GET", "POST"])
def ask():
    """Ask for a link to one's comments (the answer never says whether the address has any)."""
    if request.method == "GET":
        return render_template("privacy/ask.html")
    raw = request.form.get("email", "").strip()
    try:
        email = validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return render_template("privacy/ask.html", email=raw,
                               error="Please enter a valid email address."), 400
    # Whether the address has comments, and whether the mail limits let a link go, are decided
    # on the mail thread: the request does the same work, and answers the same, for every address.
    site, ip = site_url(), limits.client_ip()
    get_mailer().submit(lambda: _send_link(email, site, ip))
    return render_template("privacy/ask.html", sent=True, email=email)


def _send_link(email: str, site: str, ip: str | None) -> None:
    """Mail *email* its link, if it wrote any comment and the mail limits allow (mail thread)."""
    if not _comments_of(email) or not limits.allow_mail("privacy", to=email, ip=ip):
        return
    with current_app.test_request_context(base_url=site):
        link = url_for("privacy.mine", token=sign(MY_COMMENTS, {"email": email}), _external=True)
        title = current_app.config["BLOG_TITLE"]
        text = (f"Here is the link to see, download or erase your comments on {title}:\n\n{link}\n\n"
                "It works for an hour. If you did not ask for it, ignore this email.")
        html = render_template("privacy/mail.html", link=link, blog_title=title)
        get_mailer().deliver(Mail((email,), f"[{title}] Your comments", text, html))


def _with_email(view: Callable[[str, str], Any]) -> Callable[[str], Any]:
    """Call *view* with the signed link's email address; a bad or expired link gets a 400 (a
    page, or JSON for the JSON export)."""

    @functools.wraps(view)
    def from_link(token: str):
        try:
            email = _email_from(token)
        except BadLink as bad:
            if request.path.endswith(".json"):
                return {"error": "bad_link", "message": str(bad), "fields": {}}, 400
            return render_template("privacy/ask.html", error=str(bad)), 400
        return view(token, email)

    return from_link


@bp.get("/<token>")
@_with_email
def mine(token: str, email: str):
    """List every comment written with the link's email address."""
    return render_template("privacy/mine.html", email=email, comments=_comments_of(email),
                           token=token)


@bp.get("/<token>/export.json")
@_with_email
def export(token: str, email: str):
    """Everything stored about the link's email address, as JSON."""
    posts = {p.id: p.slug for p in db.session.scalars(sa.select(Post))}
    response = jsonify({
        "email": email,
        "comments": [{
            "id": c.id, "post": posts.get(c.post_id), "parent_id": c.parent_id,
            "author": c.author_name, "email": c.author_email, "url": c.author_url,
            "content": c.content, "status": c.status.value, "created_at": c.created_at.isoformat(),
            "ip": c.ip, "user_agent": c.user_agent,
        } for c in _comments_of(email)],
        "subscriptions": [{"post": posts.get(s.post_id), "confirmed": s.confirmed_at is not None}
                          for s in db.session.scalars(sa.select(Subscription).where(
                              Subscription.email == email))],
        "likes": [{"post": posts.get(like.post_id), "confirmed": like.confirmed_at is not None}
                  for like in db.session.scalars(sa.select(Like).where(Like.email == email))],
    })
    response.headers["Content-Disposition"] = "attachment; filename=my-comments.json"
    return response


@bp.post("/<token>/erase")
@_with_email
def erase(token: str, email: str):
    """Erase every comment, subscription and like of the link's email — once confirmed."""
    comments = _comments_of(email)
    if request.form.get("confirm") != "yes":
        return render_template("privacy/mine.html", email=email, comments=comments, token=token,
                               error="Tick the box to confirm that everything should go."), 400
    for comment in comments:
        service.delete(comment)
    db.session.execute(sa.delete(Subscription).where(Subscription.email == email))
    for like in db.session.scalars(sa.select(Like).where(Like.email == email)):
        if like.confirmed_at is not None:
            db.session.execute(sa.update(Post).where(Post.id == like.post_id)
                               .values(like_count=Post.like_count - 1))
        db.session.delete(like)
    db.session.commit()
    return render_template("privacy/erased.html", count=len(comments))
