"""Recording a post's events: rows of the `events` table, written in the change's own transaction.

An event exists exactly when its change does, with a monotonically increasing id, and the post's
channel is published on the broker after the commit (and not at all if the change rolls back).
The payloads are public: approved comments' fields and list items, counts, likes. Nothing here
may carry what only moderators see (emails, IPs, held comments): that is app/live/queue.py's.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import get_template_attribute

from app.extensions import db
from app.live.broker import publish_after_commit
from app.models import Comment, CommentCount, CommentStatus, Event
from app.settings import get_setting
from app.words import comments_heading

_LOCKED = "parley.live.locked"
_ADD_EVENT = sa.insert(Event.__table__)  # built once: every published comment runs it
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


def comment_event_data(comment: Comment) -> dict[str, Any]:
    """The public payload of a comment event: its fields and its rendered list item."""
    data = comment.to_dict()
    data["depth"] = comment_depth(comment)
    macro = get_template_attribute("comments/_comment.html", "comment_item")
    data["html"] = str(macro(comment, data["depth"], comment.post))
    return data


def comment_depth(comment: Comment) -> int:
    """How deep *comment* sits in its thread as readers see it, at most the Discussion limit."""
    limit = int(get_setting("thread_comments_depth"))
    depth, parent_id = 1, comment.parent_id
    while parent_id and depth < limit:
        parent = db.session.get(Comment, parent_id)
        if parent is None or parent.status != CommentStatus.APPROVED:
            break
        depth, parent_id = depth + 1, parent.parent_id
    return depth


def _lock_post(post_id: int) -> None:
    """Serialise event writers per post so ids commit in order (PostgreSQL; SQLite already does).

    The lock lasts until the transaction ends, so which posts are locked is remembered with the
    transaction they were locked in: a later transaction finds another one there and starts afresh,
    whether the earlier one committed or rolled back, with no session hook to forget it.
    """
    session = db.session()
    session.connection()  # begin the transaction, if it has not begun, so it has an identity
    transaction = session.get_transaction()
    held = session.info.get(_LOCKED)
    if held is not None and held[0] is transaction:
        locked: set[int] = held[1]
        if post_id in locked:
            return
    else:
        # The strong reference to *transaction* is what makes `is` safe: a transaction object
        # kept here cannot be freed and its address given to a later one.
        locked = set()
        session.info[_LOCKED] = (transaction, locked)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK, {"key": 0x5A7E0000 + post_id})
    locked.add(post_id)


def record(post_id: int, kind: str, data: dict[str, Any]) -> None:
    """Add an event for *post_id* to the current transaction; it is published after commit."""
    _record_all(post_id, [(kind, data)])


def _record_all(post_id: int, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Add *events* for *post_id*, in order, in one statement.

    Inserted at once, as plain rows: the log is append-only and nothing reads it back as an
    object, so the session's unit of work has nothing to track or flush for it.
    """
    _lock_post(post_id)
    db.session.connection().execute(_ADD_EVENT, [
        {"post_id": post_id, "kind": kind, "data": json.dumps(data, ensure_ascii=False)}
        for kind, data in events])
    publish_after_commit(str(post_id))


def _count_event(post_id: int) -> tuple[str, dict[str, Any]]:
    count = CommentCount.of(post_id)  # the database's triggers have counted this change in
    return "count", {"count": count, "text": comments_heading(count)}


def comment_published(comment: Comment) -> dict[str, Any]:
    """Record *comment*'s arrival and the new count; the event's payload is returned for
    whoever answers the poster, so the list item is rendered once."""
    _lock_post(comment.post_id)  # before the count is read, so counts commit in order too
    data = comment_event_data(comment)
    _record_all(comment.post_id, [("comment.created", data), _count_event(comment.post_id)])
    return data


def comment_updated(comment: Comment) -> None:
    record(comment.post_id, "comment.updated", comment_event_data(comment))


def comment_removed(comment: Comment) -> None:
    _lock_post(comment.post_id)  # before the count is read
    _record_all(comment.post_id, [
        ("comment.removed", {"id": comment.id, "post_id": comment.post_id}),
        _count_event(comment.post_id)])
