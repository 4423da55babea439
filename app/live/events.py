"""Recording a post's events: rows of the `events` table, written in the change's own transaction.

An event exists exactly when its change does, with an id that grows in the order of the commits
(given at COMMIT on PostgreSQL: see app.models.Event), and the post's channel is published on the
broker after the commit (and not at all if the change rolls back). Nothing here locks the post:
its writers run side by side until they commit. The payloads are public: approved comments'
fields and list items, counts, likes. Nothing here may carry what only moderators see (emails,
IPs, held comments): that is app/live/queue.py's.
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

_ADD_EVENT = sa.insert(Event.__table__)  # built once: every published comment runs it


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


def record(post_id: int, kind: str, data: dict[str, Any]) -> None:
    """Add an event for *post_id* to the current transaction; it is published after commit."""
    _record_all(post_id, [(kind, data)])


def _record_all(post_id: int, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Add *events* for *post_id*, in order, in one statement.

    Inserted at once, as plain rows: the log is append-only and nothing reads it back as an
    object, so the session's unit of work has nothing to track or flush for it.
    """
    db.session.connection().execute(_ADD_EVENT, [
        {"post_id": post_id, "kind": kind, "data": json.dumps(data, ensure_ascii=False)}
        for kind, data in events])
    publish_after_commit(str(post_id))


def _count_event(post_id: int) -> tuple[str, dict[str, Any]]:
    """The post's count as this transaction leaves it, stored as {"count": n}; its heading is
    worded when the event is read (app/live/posts.py), so the database can write the count.

    SQLite: read now (its triggers have counted this change in, and nobody else writes until we
    commit). PostgreSQL: written at COMMIT by the trigger that gives the event its id, with every
    transaction committed before it counted in; reading it now would be a guess.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return "count", {"count": None}
    return "count", {"count": CommentCount.of(post_id)}


def comment_published(comment: Comment) -> dict[str, Any]:
    """Record *comment*'s arrival and the new count; the event's payload is returned for
    whoever answers the poster, so the list item is rendered once."""
    data = comment_event_data(comment)
    _record_all(comment.post_id, [("comment.created", data), _count_event(comment.post_id)])
    return data


def comment_updated(comment: Comment) -> None:
    record(comment.post_id, "comment.updated", comment_event_data(comment))


def comment_removed(comment: Comment) -> None:
    _record_all(comment.post_id, [
        ("comment.removed", {"id": comment.id, "post_id": comment.post_id}),
        _count_event(comment.post_id)])
