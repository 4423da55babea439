"""A post's channel: its rows of the `events` table, read once per news by each process's hub."""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Flask

from app.extensions import db
from app.live.wire import WireEvent
from app.models import Event
from app.words import comments_heading

PAGE = 500  # events read at a time, for the hub and for a reader's backlog


class PostChannel:
    """The public events of one post: every reader of it, whatever it shows, may see them."""

    ordered = True  # ids show up in commit order (app.models.Event): skip what the backlog sent
    retry_ms = 2000

    def __init__(self, post_id: int, start: int, poll_seconds: float) -> None:
        """*start*: the last event id committed when the first reader asked (the hub reads on
        from there; each reader's backlog covers the rest)."""
        self.post_id = post_id
        self.name = str(post_id)
        self.position = start
        self.poll_seconds = poll_seconds
        self.greeting = f"connected to post {post_id}"

    def read(self) -> Iterator[list[WireEvent]]:
        """The events committed since the last read, a page at a time (in an app context)."""
        while True:
            rows = db.session.scalars(Event.since(self.post_id, self.position).limit(PAGE)).all()
            if rows:
                self.position = rows[-1].id
                yield [_wire(row) for row in rows]
            if len(rows) < PAGE:
                return

    def backlog(self, app: Flask, after: int | None) -> Iterator[list[WireEvent]]:
        """What a reader who has seen up to *after* missed, a page at a time, each page read in
        a short app context of its own so no connection is held while it is sent."""
        last = after or 0
        while True:
            with app.app_context():
                rows = db.session.scalars(Event.since(self.post_id, last).limit(PAGE)).all()
                page = [_wire(row) for row in rows]
            if page:
                last = page[-1].id
                yield page
            if len(page) < PAGE:
                return


def _wire(row: Event) -> WireEvent:
    """An event as readers get it. A count is worded here, once per read: the database writes
    only the number (on PostgreSQL, at the commit that gives the event its id)."""
    if row.kind != "count":
        return WireEvent.from_row(row)
    count = json.loads(row.data)["count"] or 0
    return WireEvent.of("count", {"count": count, "text": comments_heading(count)}, row.id)
