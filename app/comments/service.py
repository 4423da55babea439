"""The one gate for every change to a comment: screen → store → (the caller commits, once) →
after-commit effects.

The form, the JSON API, a commenter's own edit, the admin, the mail links and the command line
all call these functions, so a comment is checked, stored, counted and announced the same way
whichever door it came in by. Nothing here commits: the caller owns the transaction, so "do A
then B" (Approve and Reply) is one transaction, and a refused B leaves A undone. What must
happen only once the change is stored (live readers, mail, the page window) is registered on
the one after-commit queue (`app.database.after_commit`) by `_changed()`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import has_request_context, request
from sqlalchemy.orm.attributes import set_committed_value

from app import fresh, live
from app.comments.content import http_url, render
from app.database import insert_loaded
from app.extensions import db
from app.models import Comment, CommentStatus, Post, User, text_digest, utcnow
from app.moderation import notify, rules
from app.moderation.models import Actor, AuditAction, AuditEntry, CommentRevision
from app.moderation.screen import Draft, Verdict, screen
from app.settings import get_setting
from app.subscriptions import service as subscriptions

log = logging.getLogger(__name__)

# WordPress's column limits (wp_check_comment_data_max_lengths).
MAX_LENGTHS = {"author": 245, "email": 100, "url": 200, "comment": 65525}
DUPLICATE_MESSAGE = "Duplicate comment detected; it looks as though you’ve already said that!"
FLOOD_MESSAGE = "You are posting comments too quickly. Slow down."
_URL_SCHEME = re.compile(r"^https?://", re.IGNORECASE)
# NUL (PostgreSQL text cannot hold it) and lone UTF-16 surrogates (a JSON "\\ud800" escape:
# not encodable as UTF-8, so no database can store it) are not text anyone typed.
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
NOT_TEXT_MESSAGE = "This contains characters that are not text (a NUL or a broken Unicode escape)."
# Row ids are 32-bit integer columns on PostgreSQL: a larger number names no row (and would fail).
MAX_ID = 2**31 - 1
# The comment form's trap for robots (WordPress's name for it): hidden from people, who leave it
# empty; a robot that fills in every field fills it in too. A textarea, which browsers' autofill
# leaves alone. The JSON API takes it too (parley.js sends the form's value).
HONEYPOT = "ak_hp_textarea"


@dataclass
class CommentRejected(Exception):
    """A comment that cannot be accepted, with what to tell its author."""

    status: int
    error: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)
    retry_after: int | None = None


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CommentRejected(400, "invalid", f"{name} must be text.", {name: "Must be text."})
    if _NOT_TEXT.search(value):
        raise CommentRejected(400, "invalid", NOT_TEXT_MESSAGE, {name: NOT_TEXT_MESSAGE})
    return value.strip()


def parse_id(raw: Any) -> int:
    """A row id sent by a client: a JSON integer, or text of ASCII digits (a form field, a query
    parameter). ValueError for anything else, and outside 0 ≤ id ≤ MAX_ID.

    `int()` alone would take `true` and `1.5` as 1, and `" 1"`, `"+1"`, `"1_0"` and `"١"` too:
    none of them is the whole number the OpenAPI document promises to accept.
    """
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,10}", raw):
        value = int(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        raise ValueError(f"not an id: {raw!r}")
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"id out of range: {value}")
    return value


def validate(post: Post, data: Mapping[str, Any], user: User | None) -> Draft:
    """Check a submission against WordPress's rules; raise CommentRejected listing every problem."""
    errors: dict[str, str] = {}
    content = _text(data, "comment")
    if user is not None:
        # The account speaks for itself: its name, its verified email (for mail and Gravatar),
        # and its profile link, which Comment.author_link reads from the user.
        author, url = user.name[:MAX_LENGTHS["author"]], ""
        email = user.email if user.email and user.email_verified else ""
        email = email if len(email) <= MAX_LENGTHS["email"] else ""
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
            if "url" not in errors and ("." not in url or not http_url(url)):
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
    notify = _ticked(data.get("subscribe_comments")) or _ticked(data.get("notify"))
    return Draft(content, author, email, url, parent_id, notify, render(content),
                 honeypot=_filled(data.get(HONEYPOT)), referrer=_referrer())


def _filled(value: Any) -> str:
    """What a robot put in the honeypot ("" when left empty, as people leave it), whatever its
    type: a JSON number or list in it is as telling as text."""
    return "" if value is None else str(value).strip()


def _referrer() -> str:
    """The page a comment was sent from, when it came through a request (none from the shell)."""
    return (request.referrer or "")[:2000] if has_request_context() else ""


def _parent_id(post: Post, data: Mapping[str, Any], errors: dict[str, str]) -> int | None:
    """The comment this one answers: `comment_parent` (`parent_id` when that is absent), a whole
    number; 0 or an empty form field for none. Both are checked when both are sent.

    A well-formed number that names no approved comment on *post* (deleted, held, never there)
    is a conflict with what is stored, 409, when nothing else is wrong; a malformed one is 400.
    """
    chosen = "comment_parent" if "comment_parent" in data else "parent_id"
    parent_id = 0
    for name in ("comment_parent", "parent_id"):
        raw = data.get(name)
        if raw is None or raw == "":
            continue
        try:
            value = parse_id(raw)
        except ValueError:
            errors[name] = ("The comment you are replying to must be given by its number "
                            "(a whole number).")
            continue
        if name == chosen:
            parent_id = value
    if parent_id == 0:
        return None
    parent = db.session.get(Comment, parent_id)
    if parent is None or parent.post_id != post.id or parent.status != CommentStatus.APPROVED:
        message = "The comment you are replying to is not available."
        if not errors:
            raise CommentRejected(409, "parent_unavailable", message, {chosen: message})
        errors[chosen] = message
        return None
    return parent_id


def _summary(errors: dict[str, str]) -> str:
    if len(errors) == 1:
        return next(iter(errors.values()))
    return "Please correct the highlighted fields."


def _duplicate(post: Post, draft: Draft, user: User | None) -> int | None:
    """WordPress's duplicate check: the same text, in the same place, by the same name, email or
    account (the id of that earlier comment, or None)."""
    statement = _duplicate_lookup(draft.parent_id is not None, bool(draft.email), user is not None)
    return db.session.connection().execute(statement, {
        "post_id": post.id, "digest": text_digest(draft.content), "content": draft.content,
        "parent_id": draft.parent_id, "author": draft.author, "email": draft.email,
        "user_id": user.id if user else None}).scalar()  # a plain row: half an ORM query's cost


@functools.cache
def _duplicate_lookup(reply: bool, by_email: bool, by_user: bool) -> sa.Select:
    """Found by the text's digest (an index), so it reads one or two rows however many
    comments the post and the author have. Built once per shape: building a statement costs
    more than running it."""
    same = [Comment.author_name == sa.bindparam("author")]
    if by_email:
        same.append(Comment.author_email == sa.bindparam("email"))
    if by_user:
        same.append(Comment.user_id == sa.bindparam("user_id"))
    return sa.select(Comment.id).where(
        Comment.post_id == sa.bindparam("post_id"),
        Comment.content_hash == sa.bindparam("digest"),
        Comment.content == sa.bindparam("content"),
        Comment.parent_id == sa.bindparam("parent_id") if reply else Comment.parent_id.is_(None),
        Comment.status != CommentStatus.TRASH,
        sa.or_(*same),
    ).limit(1)


def _check_flood_and_duplicates(post: Post, draft: Draft, user: User | None, ip: str) -> None:
    if _duplicate(post, draft, user) is not None:
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


@dataclass
class Submitted:
    """A new comment, staged in the caller's transaction."""

    comment: Comment
    event: dict[str, Any] | None  # its live event's payload (fields, list item); None if not public
    # Dropped (a filled honeypot, Akismet's "discard"): *comment* was never stored, and is what
    # its poster is shown, as the poster of a held comment is.
    discarded: bool = False

    @property
    def held(self) -> bool:
        return self.comment.status != CommentStatus.APPROVED

    @property
    def signed_id(self) -> int:
        """The id the poster's cookie and the no-JS link's moderation-hash are made for: the
        comment's own; for a dropped comment a negative number, which no comment ever has, so the
        answer looks like a held comment's and grants nothing over the comment that will
        one day take its id."""
        return -self.comment.id if self.discarded else self.comment.id


def submit(post: Post, data: Mapping[str, Any], *, user: User | None = None, ip: str = "",
           user_agent: str = "") -> Submitted:
    """Screen and store a new comment on *post*; the caller commits, and then live readers,
    moderators and subscribers hear of it.

    Whatever the caller's answer needs from the database it reads before its commit, inside the
    comment's own transaction, so a database that goes away right after the commit cannot turn a
    stored comment into an error answer.
    """
    if not rules.accepts_comments(post):
        raise CommentRejected(403, "closed", "Comments are closed on this post.")
    draft = validate(post, data, user)
    _check_flood_and_duplicates(post, draft, user, ip)
    verdict = _screen(post, draft, user, ip, user_agent)
    if verdict.discard:
        return _discarded(post, draft, user, verdict)
    comment = Comment(
        post_id=post.id,
        parent_id=draft.parent_id,
        user_id=user.id if user is not None else None,
        author_name=draft.author,
        author_email=draft.email,
        author_url=draft.url,
        content=draft.content,
        content_html=draft.html,
        status=verdict.status,
        hold_reasons=verdict.reasons or None,
        notify=draft.notify,
        ip=ip[:45],
        user_agent=user_agent[:255],
    )
    if comment.status == CommentStatus.APPROVED:
        subscriptions.comment_published(comment)  # marks it notified: one INSERT, no UPDATE
        # One plain INSERT: the unit of work's flush cost more than the INSERT itself.
        insert_loaded(db.session(), comment)
    else:
        db.session.add(comment)
        db.session.flush()
    event = _changed(comment, None, screened=True)
    if draft.email and draft.notify:
        subscriptions.subscribe(draft.email, post)
    if draft.email and _ticked(data.get("subscribe_blog")):
        subscriptions.subscribe(draft.email, None)
    return Submitted(comment, event)


def _discarded(post: Post, draft: Draft, user: User | None, verdict: Verdict) -> Submitted:
    """A comment dropped silently, answered as a held one: shaped like the comment that would have
    been stored (the next id, held, dated now) but never added to the session. Nothing is stored,
    subscribed or announced; the log says why."""
    log.info("comment dropped (%s) on post %s from %r", "; ".join(verdict.reasons), post.id,
             draft.author)
    now = utcnow()
    comment = Comment(
        id=(db.session.scalar(sa.select(sa.func.max(Comment.id))) or 0) + 1,
        post_id=post.id, parent_id=draft.parent_id, user_id=user.id if user is not None else None,
        author_name=draft.author, author_email=draft.email, author_url=draft.url,
        content=draft.content, content_html=draft.html, status=CommentStatus.PENDING,
        notify=draft.notify, created_at=now, updated_at=now, edited_at=None)
    # Loaded as if read, without the relationship events that would add it to the post's
    # collection (and so, one day, to the session).
    set_committed_value(comment, "post", post)
    set_committed_value(comment, "user", user)
    return Submitted(comment, None, discarded=True)


def _screen(post: Post, draft: Draft, user: User | None, ip: str,
            user_agent: str) -> Verdict:
    """The rules' verdict on *draft*; refused outright raises CommentRejected."""
    verdict = screen(post, draft, user, ip, user_agent)
    if verdict.refuse:
        raise CommentRejected(403, verdict.error, verdict.refuse)
    return verdict


def _ticked(value: Any) -> bool:
    return str(value or "").lower() in {"subscribe", "1", "true", "yes", "on"}


def _changed(comment: Comment, before: CommentStatus | None, *, edited: bool = False,
             screened: bool = False) -> dict[str, Any] | None:
    """Register what *comment*'s change (from *before*; None: new) means after the commit.

    The one after-commit path of every change to a comment: its live event is recorded in the
    change's own transaction and published after the commit; subscribers hear of a comment
    made public, moderators of one the rules have just held (*screened*: the rules were asked,
    for a new comment or an author's edit); open moderation queues and the
    page window learn of any change. A rolled-back change sends nothing. Returns the payload
    of a comment.created event, when there is one.
    """
    after = comment.status
    event = None
    if after == CommentStatus.APPROVED and before != CommentStatus.APPROVED:
        event = live.comment_published(comment)
        if before is not None:  # a new comment was marked before its INSERT
            subscriptions.comment_published(comment)
    elif before == CommentStatus.APPROVED and after != CommentStatus.APPROVED:
        live.comment_removed(comment)
    elif after == CommentStatus.APPROVED and edited:
        live.comment_updated(comment)
    if screened and after == CommentStatus.PENDING:
        notify.comment_held(comment)
    live.queue_changed()
    fresh.pages_changed()
    return event


def set_status(comment: Comment, status: CommentStatus) -> bool:
    """Move *comment* to *status*; return False if it was already there."""
    before = comment.status
    if before == status:
        return False
    comment.status = status
    db.session.flush()  # the count triggers run before the event reads the count
    _changed(comment, before)
    return True


def delete(comment: Comment) -> None:
    """Delete *comment* for good; its replies stay, attached to the post."""
    if comment.status == CommentStatus.APPROVED:
        set_status(comment, CommentStatus.TRASH)
    db.session.delete(comment)
    live.queue_changed()


def _rewrite(comment: Comment, actor: Actor, content: str, author: str, email: str,
             url: str) -> list[str]:
    """Put the new text and author details on *comment*, keeping the old as a revision and
    auditing it; return the names of the fields that changed."""
    new = (content.strip(), author.strip(), email.strip(), url.strip())
    old = (comment.content, comment.author_name, comment.author_email, comment.author_url)
    fields = [name for name, a, b in zip(("content", "author", "email", "url"), new, old,
                                         strict=True) if a != b]
    if not fields:
        return fields
    CommentRevision.keep(comment, actor)
    comment.content, comment.author_name, comment.author_email, comment.author_url = new
    comment.content_html = render(comment.content)
    comment.updated_at = comment.edited_at = utcnow()
    AuditEntry.add(actor, AuditAction.EDIT, comment.id, fields=fields)
    return fields


def moderator_edit(comment: Comment, actor: Actor, *, content: str, author: str, email: str,
                   url: str) -> bool:
    """A moderator edits *comment*: trusted, as in WordPress (no rules are asked), kept as a
    revision; return False if nothing changed."""
    before = comment.status
    if not _rewrite(comment, actor, content, author, email, http_url(url)):
        return False
    db.session.flush()
    _changed(comment, before, edited=True)
    return True


def editable_until(comment: Comment) -> datetime | None:
    """Until when its author may still edit or delete *comment* (None: no longer)."""
    minutes = int(get_setting("comment_edit_minutes"))
    until = comment.created_at + timedelta(minutes=minutes)
    return until if minutes > 0 and utcnow() < until else None


# A comment's place in moderation, mildest first: an edit never moves a comment to a milder one
# (an author cannot approve their own held comment by editing it).
_SEVERITY = {CommentStatus.APPROVED: 0, CommentStatus.PENDING: 1, CommentStatus.SPAM: 2,
             CommentStatus.TRASH: 2}


def edit_own(comment: Comment, content: Any, *, ip: str = "", user_agent: str = "") -> None:
    """The author corrects *comment*: screened again exactly like a new comment, the old text
    kept. An edit the rules would hold sends the comment back to Pending (live readers see it
    go); one they would refuse changes nothing. The caller commits."""
    if not isinstance(content, str) or not content.strip():
        raise CommentRejected(400, "invalid", "Please type your comment text.",
                              {"comment": "Please type your comment text."})
    if _NOT_TEXT.search(content):
        raise CommentRejected(400, "invalid", NOT_TEXT_MESSAGE, {"comment": NOT_TEXT_MESSAGE})
    if len(content.strip()) > MAX_LENGTHS["comment"]:
        message = f"This is too long: at most {MAX_LENGTHS['comment']:,} characters."
        raise CommentRejected(400, "invalid", message, {"comment": message})
    post = db.session.get(Post, comment.post_id)
    if not rules.accepts_comments(post):
        raise CommentRejected(403, "closed", "Comments are closed on this post.")
    draft = Draft(content.strip(), comment.author_name, comment.author_email, comment.author_url,
                  comment.parent_id, comment.notify, render(content.strip()),
                  referrer=_referrer(), created_at=comment.created_at)
    verdict = _screen(post, draft, comment.user, ip or comment.ip, user_agent or comment.user_agent)
    before = comment.status
    if not _rewrite(comment, Actor.author_of(comment, ip), draft.content, comment.author_name,
                    comment.author_email, comment.author_url):
        return
    if _SEVERITY[verdict.status] > _SEVERITY[before]:
        comment.status = verdict.status
        comment.hold_reasons = [*verdict.reasons, "edited by its author"]
    db.session.flush()
    _changed(comment, before, edited=True, screened=True)


def delete_own(comment: Comment, *, ip: str = "") -> None:
    """The author takes *comment* back: deleted for good (replies stay), and audited. The
    caller commits."""
    AuditEntry.add(Actor.author_of(comment, ip), AuditAction.DELETE, comment.id,
                   status=comment.status.value, author=comment.author_name,
                   excerpt=" ".join(comment.content.split())[:120], post_id=comment.post_id)
    delete(comment)
