"""The moderation queue, live: new held comments and moving counts, for admins only.

Public live events carry approved comments only, so the queue has its own feed. One thread per
process polls the comments table — ONE query per interval however many admins are watching,
and none while nobody is — and hands the same preformatted events to a queue per open page.
Polling (rather than the broker) means a comment stored by any worker or host, or by the command
line, reaches the queue without Redis. These events carry emails and IPs: only /admin/ serves them.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, render_template

from app.extensions import db
from app.models import Comment, CommentStatus

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 15


def counts() -> dict[str, int]:
    """The queue counts WordPress shows: All (pending + approved), Pending, Approved, Spam, Trash."""
    rows = db.session.execute(sa.select(Comment.status, sa.func.count(Comment.id))
                              .group_by(Comment.status)).all()
    found = {status.value: n for status, n in rows}
    result = {s.value: found.get(s.value, 0) for s in CommentStatus}
    result["all"] = result["pending"] + result["approved"]
    return result


def row_html(comment: Comment, csrf: str = "") -> str:
    """A queue row; live rows carry an empty CSRF field that the page's script fills in."""
    from app.admin.views import row_context

    return render_template("admin/_row.html", r=row_context(comment, csrf))


def comment_event(comment: Comment) -> dict[str, Any]:
    return {"id": comment.id, "status": comment.status.value, "html": row_html(comment)}


def encode(kind: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@dataclass
class _State:
    counts: tuple[tuple[str, int], ...] = ()
    max_id: int = 0
    max_updated: datetime | None = None


class QueueFeed:
    """One poller per process for every open moderation queue."""

    def __init__(self, app: Flask, interval: float) -> None:
        self.app = app
        self.interval = interval
        self._clients: set[queue.Queue[str]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._state: _State | None = None
        self.polls = 0  # how many times the table was read (tests check it is per process)

    def subscribe(self) -> queue.Queue[str]:
        client: queue.Queue[str] = queue.Queue(maxsize=500)
        with self._lock:
            self._clients.add(client)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="parley-admin-feed",
                                                daemon=True)
                self._thread.start()
        return client

    def unsubscribe(self, client: queue.Queue[str]) -> None:
        with self._lock:
            self._clients.discard(client)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                watching = bool(self._clients)
            if not watching:
                with self._lock:
                    if not self._clients:
                        self._state = None  # start afresh when someone looks again
                continue
            try:
                with self.app.app_context(), self.app.test_request_context():
                    self.poll()
            except Exception:
                log.exception("admin feed: polling failed; retrying")

    def prime(self) -> None:
        """Take the starting point now, if there is none, so nothing committed after it is missed."""
        with self._lock:
            primed = self._state is not None
        if not primed:
            self._state = self._snapshot()

    def poll(self) -> None:
        """Read the table once; tell every client what changed since the last read."""
        now = self._snapshot()
        before, self._state = self._state, now
        if before is None or before == now:
            return
        events: list[str] = []
        changed = sa.select(Comment).where(Comment.id > before.max_id)
        if before.max_updated is not None:
            changed = sa.select(Comment).where(sa.or_(Comment.id > before.max_id,
                                                      Comment.updated_at > before.max_updated))
        for comment in db.session.scalars(changed.order_by(Comment.id).limit(100)):
            kind = "comment.held" if comment.id > before.max_id else "comment.changed"
            events.append(encode(kind, comment_event(comment), now.max_id))
        table = dict(now.counts)
        table["all"] = table["pending"] + table["approved"]
        events.append(encode("counts", table, now.max_id))
        self._fan_out(events)

    def _snapshot(self) -> _State:
        self.polls += 1
        rows = db.session.execute(
            sa.select(Comment.status, sa.func.count(Comment.id), sa.func.max(Comment.id),
                      sa.func.max(Comment.updated_at)).group_by(Comment.status)).all()
        found = {status.value: n for status, n, _, _ in rows}
        return _State(
            counts=tuple((s.value, found.get(s.value, 0)) for s in CommentStatus),
            max_id=max((m for _, _, m, _ in rows if m is not None), default=0),
            max_updated=max((u for _, _, _, u in rows if u is not None), default=None),
        )

    def _fan_out(self, events: list[str]) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            for event in events:
                try:
                    client.put_nowait(event)
                except queue.Full:  # a page that stopped reading: it reconnects and catches up
                    self.unsubscribe(client)
                    break


def get_feed(app: Flask) -> QueueFeed:
    feed = app.extensions.get("parley.admin_feed")
    if feed is None:
        feed = QueueFeed(app, float(app.config.get("ADMIN_LIVE_POLL_SECONDS", 2.0)))
        feed = app.extensions.setdefault("parley.admin_feed", feed)
    return feed


def stream(app: Flask, after_id: int | None, deadline: float) -> Iterator[str]:
    """The admin queue's Server-Sent Events until the admin session's *deadline* (a time.time())."""
    feed = get_feed(app)
    client = feed.subscribe()
    try:
        with app.app_context(), app.test_request_context():
            feed.prime()
            first = [encode("counts", counts())]
            if after_id is not None:  # a reconnect: the held comments it missed
                missed = db.session.scalars(sa.select(Comment).where(
                    Comment.id > after_id, Comment.status == CommentStatus.PENDING)
                    .order_by(Comment.id).limit(100)).all()
                first = [encode("comment.held", comment_event(c), c.id) for c in missed] + first
            db.session.remove()
        heartbeat = float(app.config.get("LIVE_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))
        yield "retry: 3000\n: connected to the moderation queue\n\n"
        yield from first
        while time.time() < deadline:
            try:
                yield client.get(timeout=min(heartbeat, max(0.1, deadline - time.time())))
            except queue.Empty:
                yield ": heartbeat\n\n"
        yield encode("expired", {"message": "Your session has expired. Please sign in again."})
    finally:
        feed.unsubscribe(client)
