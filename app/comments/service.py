"""Everything that changes a comment goes through here: validate → store → commit → publish.

Views, the JSON API, the command line and (later) the admin call these functions, so a comment
is checked, stored, counted and broadcast the same way whichever door it came in by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from app import live
from app.comments.content import render
from app.extensions import db
from app.models import Comment, CommentStatus, Post, User, utcnow
from app.settings import get_setting

# WordPress's column limits (wp_check_comment_data_max_lengths).
MAX_LENGTHS = {"author": 245, "email": 100, "url": 200, "comment": 65525}
DUPLICATE_MESSAGE = "Duplicate comment detected; it looks as though you’ve already said that!"
FLOOD_MESSAGE = "You are posting comments too quickly. Slow down."
_URL_SCHEME = re.compile(r"^https?://", re.IGNORECASE)


@dataclass
class CommentRejected(Exception):
    """A comment that cannot be accepted, with what to tell its author."""

    status: int
    error: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)
    retry_after: int | None = None


@dataclass
class Draft:
    """A validated comment, ready to store."""

    content: str
    author: str
    email: str
    url: str
    parent_id: int | None
    notify: bool


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CommentRejected(400, "invalid", f"{name} must be text.", {name: "Must be text."})
    return value.strip()


def validate(post: Post, data: Mapping[str, Any], user: User | None) -> Draft:
    """Check a submission against WordPress's rules; raise CommentRejected listing every problem."""
    errors: dict[str, str] = {}
    content = _text(data, "comment")
    if user is not None:
        author, email, url = user.name, (user.email or "") if user.email_verified else "", ""
        url = user.profile_url or ""
    else:
        author, email, url = _text(data, "author"), _text(data, "email"), _text(data, "url")
        require = get_setting("require_name_email")
        if require and not author:
            errors["author"] = "Please fill in your name."
        if require and not email:
            errors["email"] = "Please fill in your email address."
        if email and "email" not in errors:
            try:
                email = validate_email(email, check_deliverability=False).normalized
            except EmailNotValidError:
                errors["email"] = "Please enter a valid email address."
        if url:
            if not _URL_SCHEME.match(url):
                if "://" in url or ":" in url.split("/", 1)[0]:
                    errors["url"] = "Your website must be an http:// or https:// address."
                else:
                    url = "http://" + url  # WordPress adds the scheme to a bare domain
            if "url" not in errors and (any(c.isspace() for c in url) or "." not in url):
                errors["url"] = "Please enter a valid website address."
    if not content:
        errors["comment"] = "Please type your comment text."
    for name, limit in MAX_LENGTHS.items():
        value = {"author": author, "email": email, "url": url, "comment": content}[name]
        if len(value) > limit and name not in errors:
            errors[name] = f"This is too long: at most {limit:,} characters, not {len(value):,}."

    parent_id = _parent_id(post, data, errors)
    if errors:
        raise CommentRejected(400, "invalid", _summary(errors), errors)
    notify = str(data.get("subscribe_comments", "") or data.get("notify", "")).lower() in {
        "subscribe", "1", "true", "yes", "on"
    }
    return Draft(content, author, email, url, parent_id, notify)


def _parent_id(post: Post, data: Mapping[str, Any], errors: dict[str, str]) -> int | None:
    raw = data.get("comment_parent", data.get("parent_id", 0)) or 0
    try:
        parent_id = int(raw)
    except (TypeError, ValueError):
        errors["comment_parent"] = "The comment you are replying to is not valid."
        return None
    if parent_id <= 0:
        return None
    parent = db.session.get(Comment, parent_id)
    if parent is None or parent.post_id != post.id or parent.status != CommentStatus.APPROVED:
        errors["comment_parent"] = "The comment you are replying to is not available."
        return None
    return parent_id


def _summary(errors: dict[str, str]) -> str:
    if len(errors) == 1:
        return next(iter(errors.values()))
    return "Please correct the highlighted fields."


def _check_flood_and_duplicates(post: Post, draft: Draft, user: User | None, ip: str) -> None:
    same_author = Comment.author_email == draft.email if draft.email else sa.false()
    if user is not None:
        same_author = sa.or_(same_author, Comment.user_id == user.id)
    duplicate = db.session.scalar(
        sa.select(Comment.id).where(
            Comment.post_id == post.id,
            Comment.parent_id.is_(None) if draft.parent_id is None
            else Comment.parent_id == draft.parent_id,
            sa.or_(same_author, Comment.author_name == draft.author),
            Comment.content == draft.content,
            Comment.status != CommentStatus.TRASH,
        ).limit(1)
    )
    if duplicate is not None:
        raise CommentRejected(409, "duplicate", DUPLICATE_MESSAGE)

    seconds = int(get_setting("comment_flood_seconds"))
    if seconds <= 0 or (user is not None and user.is_admin):
        return
    since = utcnow() - timedelta(seconds=seconds)
    who = [Comment.ip == ip] if ip else []
    if draft.email:
        who.append(Comment.author_email == draft.email)
    if not who:
        return
    last = db.session.scalar(
        sa.select(sa.func.max(Comment.created_at)).where(sa.or_(*who), Comment.created_at > since)
    )
    if last is not None:
        wait = max(1, int((last + timedelta(seconds=seconds) - utcnow()).total_seconds()) + 1)
        raise CommentRejected(429, "flood", FLOOD_MESSAGE, retry_after=wait)


def _initial_status(draft: Draft, user: User | None) -> CommentStatus:
    if user is not None and user.is_admin:
        return CommentStatus.APPROVED
    rule = get_setting("comment_moderation")
    if rule == "nobody":
        return CommentStatus.APPROVED
    if rule == "everyone":
        return CommentStatus.PENDING
    # WordPress's default: the author must have a previously approved comment.
    known = sa.select(Comment.id).where(Comment.status == CommentStatus.APPROVED)
    if user is not None:
        known = known.where(Comment.user_id == user.id)
    elif draft.email:
        known = known.where(Comment.author_email == draft.email, Comment.author_name == draft.author)
    else:
        return CommentStatus.PENDING
    return CommentStatus.APPROVED if db.session.scalar(known.limit(1)) else CommentStatus.PENDING


def submit(post: Post, data: Mapping[str, Any], *, user: User | None = None, ip: str = "",
           user_agent: str = "") -> Comment:
    """Validate, store, commit and publish a new comment on *post*."""
    if not post.comments_open:
        raise CommentRejected(403, "closed", "Comments are closed on this post.")
    draft = validate(post, data, user)
    _check_flood_and_duplicates(post, draft, user, ip)
    comment = Comment(
        post_id=post.id,
        parent_id=draft.parent_id,
        user_id=user.id if user is not None else None,
        author_name=draft.author,
        author_email=draft.email,
        author_url=draft.url,
        content=draft.content,
        content_html=render(draft.content),
        status=_initial_status(draft, user),
        notify=draft.notify,
        ip=ip[:45],
        user_agent=user_agent[:255],
    )
    comment.user = user
    db.session.add(comment)
    db.session.flush()
    if comment.status == CommentStatus.APPROVED:
        live.comment_published(comment)
    db.session.commit()  # the after-commit hook publishes what live.* recorded
    return comment


def set_status(comment: Comment, status: CommentStatus) -> bool:
    """Move *comment* to *status* and tell live readers; return False if it was already there."""
    if comment.status == status:
        return False
    was_public = comment.status == CommentStatus.APPROVED
    comment.status = status
    db.session.flush()
    if status == CommentStatus.APPROVED:
        live.comment_published(comment)
    elif was_public:
        live.comment_removed(comment)
    return True


def delete(comment: Comment) -> None:
    """Delete *comment* for good; its replies stay, attached to the post."""
    if comment.status == CommentStatus.APPROVED:
        comment.status = CommentStatus.TRASH
        db.session.flush()
        live.comment_removed(comment)
    db.session.delete(comment)


def edit(comment: Comment, content: str) -> None:
    """Replace *comment*'s text; approved comments update live."""
    comment.content = content.strip()
    comment.content_html = render(comment.content)
    comment.updated_at = utcnow()
    db.session.flush()
    if comment.status == CommentStatus.APPROVED:
        live.comment_updated(comment)
