"""Likes: "N bloggers like this", with the likers' avatars, live on every open page.

Signed-in readers like with their account at once; a guest gives an email and the like counts
once they confirm it from the mail (one like per email), after which their browser may unlike.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_login import current_user

from app import fresh, limits, live
from app.errors import error_response
from app.extensions import db
from app.mail import Mail, get_mailer
from app.models import Like, Post, User, liker_avatar, liker_name, utcnow
from app.signing import BadLink, Purpose, sign, unsign
from app.words import likes_text

bp = Blueprint("likes", __name__)

LIKERS_SHOWN = 12
COOKIE = "parley_likes"
LIKE_CONFIRM = Purpose("like-confirm", 3 * 24 * 3600,
                       "This link has expired. Like the post again to get a new one.")
# The browser's own likes: unsigned by time, as the cookie has always been (its max-age ends it).
LIKES_COOKIE = Purpose("likes", None, timed=False)


# Built once, and read as plain rows: the article page runs it on every uncached request.
_LIKERS = (sa.select(Like.name, Like.email, User.id, User.name, User.email, User.avatar_url)
           .outerjoin(User, Like.user_id == User.id)
           .where(Like.post_id == sa.bindparam("post_id"), Like.confirmed_at.is_not(None))
           .order_by(Like.confirmed_at.desc(), Like.id.desc()).limit(LIKERS_SHOWN))


def likers(post_id: int) -> list[dict[str, str]]:
    """The latest likers' names and pictures, as Like.display_name and Like.avatar_url say."""
    rows = db.session.connection().execute(_LIKERS, {"post_id": post_id})
    return [{"name": liker_name(name, user_name if user_id is not None else None),
             "avatar": liker_avatar(email, user_email, avatar)}
            for name, email, user_id, user_name, user_email, avatar in rows]


def _state(post: Post) -> dict[str, Any]:
    return {"count": post.like_count, "text": likes_text(post.like_count),
            "likers": likers(post.id)}


def _record_change(post: Post, delta: int) -> None:
    """Move the count in the same transaction and tell live readers after the commit."""
    db.session.execute(sa.update(Post).where(Post.id == post.id)
                       .values(like_count=Post.like_count + delta))
    db.session.flush()
    db.session.refresh(post)
    live.record(post.id, "likes", _state(post))
    fresh.pages_changed()


def _browser_likes() -> list[int]:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return []
    try:
        data = unsign(LIKES_COOKIE, raw)
    except BadLink:
        return []
    return [i for i in data if isinstance(i, int)] if isinstance(data, list) else []


def _my_like(post: Post) -> Like | None:
    if current_user.is_authenticated:
        return db.session.scalar(sa.select(Like).where(Like.post_id == post.id,
                                                       Like.user_id == current_user.id))
    ids = _browser_likes()
    if not ids:
        return None
    return db.session.scalar(sa.select(Like).where(Like.post_id == post.id, Like.id.in_(ids),
                                                   Like.confirmed_at.is_not(None)))


def _added(like: Like) -> bool:
    """Store *like* unless the same like (post and account, or post and email) is stored
    already, perhaps by a request running at the same moment (a double click): False then."""
    try:
        with db.session.begin_nested():
            db.session.add(like)
    except sa.exc.IntegrityError:
        return False
    return True


@bp.get("/api/posts/<slug>/likes")
def show(slug: str):
    """The post's like count, its latest likers, and whether this reader likes it."""
    post = Post.by_slug_or_404(slug)
    mine = _my_like(post)
    response = {**_state(post), "liked": mine is not None and mine.confirmed_at is not None}
    return response, 200, {"Cache-Control": "private, no-store"}


@bp.post("/api/posts/<slug>/likes")
def like(slug: str):
    """Like the post: at once when signed in; after a confirmation mail for a guest."""
    post = Post.by_slug_or_404(slug)
    if current_user.is_authenticated:
        if _my_like(post) is None and _added(
                Like(post_id=post.id, user_id=current_user.id, confirmed_at=utcnow())):
            _record_change(post, +1)
            db.session.commit()
        return {**_state(post), "liked": True}
    data = _json_object()
    if data is None:
        return error_response(400, "Send your email as a JSON object to like this post.",
                              error="bad_json")
    email, name, errors = _guest(data)
    if errors:
        return error_response(400, errors.get("email") or f"name: {errors['name']}",
                              error="invalid", fields=errors)
    existing = db.session.scalar(sa.select(Like).where(Like.post_id == post.id, Like.email == email))
    if existing is not None and existing.confirmed_at is not None:
        return {**_state(post), "liked": False, "pending": False,
                "message": "This email already likes this post."}
    if existing is None:
        existing = Like(post_id=post.id, email=email, name=name)
        if not _added(existing):  # liked with this email a moment ago, by another request
            existing = db.session.scalar(
                sa.select(Like).where(Like.post_id == post.id, Like.email == email))
    db.session.commit()
    _send_confirmation(existing, post)
    return {**_state(post), "liked": False, "pending": True,
            "message": "Check your email to confirm your like."}, 202


@bp.delete("/api/posts/<slug>/likes")
def unlike(slug: str):
    """Take back this reader's like."""
    post = Post.by_slug_or_404(slug)
    mine = _my_like(post)
    if mine is None:
        return error_response(404, "You do not like this post (from this browser).")
    db.session.delete(mine)
    _record_change(post, -1)
    db.session.commit()
    return {**_state(post), "liked": False}


def _json_object() -> dict | None:
    """The request's body as a JSON object, or None for anything else (as the comments API's
    `_json_object`: `[[[[…` nested 100,000 deep fits in 256 KiB and raises RecursionError)."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        return None
    return data if isinstance(data, dict) else None


# What the OpenAPI document says a guest's like is: the columns' lengths, counted before
# trimming; text PostgreSQL can store (no NUL, no lone surrogate from a "\ud800" escape).
_LIMITS = {"email": Like.__table__.c.email.type.length, "name": Like.__table__.c.name.type.length}
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def _guest(data: dict) -> tuple[str, str, dict[str, str]]:
    """A guest's normalised email and trimmed name from *data*, and a message per bad field."""
    errors: dict[str, str] = {}
    email = _text(data, "email", errors)
    name = _text(data, "name", errors)
    if "email" not in errors:
        try:
            email = validate_email(email, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            errors["email"] = ("Please enter a valid email address." if email
                               else "Please enter your email address.")
        else:
            if len(email) > _LIMITS["email"]:  # normalising can lengthen a non-ASCII address
                errors["email"] = f"This is too long: at most {_LIMITS['email']} characters."
    return email, name, errors


def _text(data: dict, field: str, errors: dict[str, str]) -> str:
    """*field* of *data*, trimmed; "" with a message in *errors* when it is not a JSON string
    that fits its column (surrounding whitespace counted) and PostgreSQL can store."""
    value, limit = data.get(field, ""), _LIMITS[field]
    if not isinstance(value, str):
        errors[field] = "Must be text."
    elif len(value) > limit:
        errors[field] = f"This is too long: at most {limit:,} characters, not {len(value):,}."
    elif _NOT_TEXT.search(value):
        errors[field] = "This contains characters that are not text (a NUL or a broken Unicode escape)."
    else:
        return value.strip()
    return ""


def _send_confirmation(like: Like, post: Post) -> None:
    """Queue the confirmation mail; it goes only while the mail limits allow (app/limits.py),
    decided on the mail thread, so the answer and its timing are the same either way."""
    token = sign(LIKE_CONFIRM, {"id": like.id, "email": like.email})
    link = url_for("likes.confirm", token=token, _external=True)
    title = current_app.config["BLOG_TITLE"]
    text = (f"Someone (we hope you) asked to like “{post.title}” with this address.\n\n"
            f"To confirm, open: {link}\n\nIf it was not you, ignore this email.\n— {title}")
    html = render_template("likes/confirm_mail.html", post=post, link=link, blog_title=title)
    mail = Mail((like.email,), f"[{title}] Confirm your like", text, html)
    mailer, to, ip = get_mailer(), like.email, limits.client_ip()

    def send() -> None:
        if limits.allow_mail("like", to=to, ip=ip):
            mailer.deliver(mail)

    mailer.submit(send)


@bp.route("/likes/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """Show what the link confirms (GET); count the like (POST, the page's button)."""
    try:
        data = unsign(LIKE_CONFIRM, token)
    except BadLink as bad:
        return render_template("likes/confirm.html", error=str(bad)), 400
    like = db.session.get(Like, data.get("id")) if isinstance(data, dict) else None
    if like is None or like.email != data.get("email"):
        abort(404, description="This like no longer exists.")
    post = db.session.get(Post, like.post_id)
    if request.method == "GET":
        return render_template("likes/confirm.html", like=like, post=post, done=False)
    if like.confirmed_at is None:
        like.confirmed_at = utcnow()
        _record_change(post, +1)
        db.session.commit()
    response = current_app.make_response(
        render_template("likes/confirm.html", like=like, post=post, done=True))
    ids = [i for i in _browser_likes() if i != like.id][-49:] + [like.id]
    response.set_cookie(COOKIE, sign(LIKES_COOKIE, ids),
                        max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response
