"""The moderation queue's channel: held comments and moving counts, for admins only.

Its events carry emails and IPs, so they are never written to the public `events` table and
never published under a post's name: the channel is read from the comments table itself, and
only /admin/ opens it (`queue_stream`). Each process reads the table once per news or poll
however many admins watch, and not at all while nobody does. The news comes from the comment
gate (`queue_changed()` after any change to a comment commits); the poll every
ADMIN_LIVE_POLL_SECONDS covers changes made where no broker reaches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import Flask, current_app

from app.extensions import db
from app.live.broker import publish_after_commit
from app.live.wire import WireEvent
from app.models import Comment, CommentStatus

QUEUE = "queue"  # the channel's name; a post's channel is its id, so the two never meet
REPLAY_LIMIT = 100

RenderRow = Callable[[Comment], str]  # a queue row's HTML, in a request context

_SNAPSHOT = sa.select(Comment.status, sa.func.count(Comment.id), sa.func.max(Comment.id),
                      sa.func.max(Comment.updated_at)).group_by(Comment.status)


def queue_counts() -> dict[str, int]:
    """The queue counts WordPress shows: All (pending + approved), Pending, Approved, Spam, Trash."""
    return _snapshot().table()


def queue_changed() -> None:
    """Tell open moderation queues, once the current transaction commits, that a comment changed.

    The comment gate calls it for every change to a comment, held or public; a rolled-back
    change sends nothing.
    """
    publish_after_commit(QUEUE)


@dataclass(frozen=True)
class _State:
    counts: tuple[tuple[str, int], ...]
    max_id: int
    max_updated: datetime | None

    def table(self) -> dict[str, int]:
        counts = dict(self.counts)
        counts["all"] = counts["pending"] + counts["approved"]
        return counts


class QueueChannel:
    """Every comment's moderation state, as the Comments screen shows it."""

    name = QUEUE
    ordered = False  # ids are the newest comment's: several events share one
    retry_ms = 3000
    greeting = "connected to the moderation queue"

    def __init__(self, render_row: RenderRow, poll_seconds: float) -> None:
        self.render_row = render_row
        self.poll_seconds = poll_seconds
        self.reads = 0  # times the hub read the table (tests check it is once per process)
        self._state: _State | None = None
        self._lock = threading.Lock()

    def read(self) -> Iterator[list[WireEvent]]:
        """What changed since the last read: new comments, changed ones, and the counts."""
        with self._lock:
            self.reads += 1
            now = _snapshot()
            before, self._state = self._state, now
        if before is None or before == now:
            return
        changed = Comment.id > before.max_id
        if before.max_updated is not None:
            changed = sa.or_(changed, Comment.updated_at > before.max_updated)
        with current_app.test_request_context():  # rows link to posts and admin actions
            events = [WireEvent.of("comment.held" if comment.id > before.max_id
                                   else "comment.changed", self._row(comment), now.max_id)
                      for comment in db.session.scalars(sa.select(Comment).where(changed)
                                                        .order_by(Comment.id).limit(REPLAY_LIMIT))]
        events.append(WireEvent.of("counts", now.table(), now.max_id))
        yield events

    def backlog(self, app: Flask, after: int | None) -> Iterator[list[WireEvent]]:
        """The counts, after the held comments a reconnecting page (at *after*) missed."""
        with app.test_request_context():
            with self._lock:  # in turn with the hub's reads: no change falls between the two
                now = _snapshot()
                if self._state is None:  # the hub reads on from here
                    self._state = now
            events = []
            if after is not None:
                missed = db.session.scalars(sa.select(Comment).where(
                    Comment.id > after, Comment.status == CommentStatus.PENDING)
                    .order_by(Comment.id).limit(REPLAY_LIMIT))
                events = [WireEvent.of("comment.held", self._row(c), c.id) for c in missed]
        events.append(WireEvent.of("counts", now.table()))
        yield events

    def _row(self, comment: Comment) -> dict[str, object]:
        return {"id": comment.id, "status": comment.status.value, "html": self.render_row(comment)}


def _snapshot() -> _State:
    rows = db.session.execute(_SNAPSHOT).all()
    found = {status.value: n for status, n, _, _ in rows}
    return _State(
        counts=tuple((s.value, found.get(s.value, 0)) for s in CommentStatus),
        max_id=max((m for _, _, m, _ in rows if m is not None), default=0),
        max_updated=max((u for _, _, _, u in rows if u is not None), default=None),
    )
