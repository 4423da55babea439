"""The per-process hub: ONE thread, one heartbeat pass and one fan-out for every channel.

A channel is a post (app/live/posts.py) or the moderation queue (app/live/queue.py), known by
its name, the word the broker carries. On news of a channel (or when its poll is due) the hub
reads it once — one database read however many readers it has — and hands the same encoded
batch to a bounded queue per reader; a reader whose queue is full has stopped reading and is
dropped (its EventSource reconnects and replays what it missed).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from flask import Flask

from app.live.broker import Broker, get_broker
from app.live.wire import HEARTBEAT, HEARTBEAT_SECONDS, Batch, WireEvent

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # batches waiting for one reader before it counts as gone


class Channel(Protocol):
    name: str  # what the broker carries for it; unique in a process
    poll_seconds: float  # read this often even without news (changes where no broker reaches)
    ordered: bool  # event ids only grow, so a reader can skip what it already has
    retry_ms: int
    greeting: str

    def read(self) -> Iterator[list[WireEvent]]:
        """What is new since the last read, in pages (in the hub's thread, in an app context)."""

    def backlog(self, app: Flask, after: int | None) -> Iterator[list[WireEvent]]:
        """What a new reader who has seen up to *after* should get first."""


@dataclass(eq=False)
class Subscriber:
    channel: Channel
    queue: queue.Queue[Batch] = field(default_factory=lambda: queue.Queue(maxsize=QUEUE_SIZE))
    dropped: bool = False
    last_write: float = field(default_factory=time.monotonic)


class StreamSlot:
    """One client's open stream, counted by the hub until it is released (once, however often
    it is asked to be)."""

    def __init__(self, hub: Hub, client: str) -> None:
        self._hub: Hub | None = hub
        self.client = client

    def release(self) -> None:
        hub = self._hub
        if hub is not None:
            hub._release(self)


class Hub:
    """Fans news out to this process's readers: one read per channel per news, not per reader."""

    def __init__(self, app: Flask, broker: Broker,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.app = app
        self.broker = broker
        self.heartbeat_seconds = min(heartbeat_seconds, HEARTBEAT_SECONDS)
        # A pass every quarter interval beats each reader before it has gone a whole one quiet.
        self.beat_every = self.heartbeat_seconds / 4
        self._channels: dict[str, Channel] = {}
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._next_read: dict[str, float] = {}
        self._news: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._streams_of: dict[str, int] = {}  # open streams per client (LIVE_MAX_STREAMS_PER_IP)

    def subscribe(self, channel: Channel) -> Subscriber:
        """Add a reader of *channel*; the subscriber's `channel` is the one the hub reads.

        A channel the hub does not watch yet is watched from the state *channel* was made with,
        so nothing committed between this call and the reader's own backlog can fall between
        the two; a channel already watched is read on from where the hub is.
        """
        self._ensure_running()
        with self._lock:
            channel = self._channels.setdefault(channel.name, channel)
            subscriber = Subscriber(channel)
            self._subscribers.setdefault(channel.name, set()).add(subscriber)
            self._next_read.setdefault(channel.name, time.monotonic() + channel.poll_seconds)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        name = subscriber.channel.name
        with self._lock:
            subscribers = self._subscribers.get(name)
            if subscribers is None:
                return
            subscribers.discard(subscriber)
            if not subscribers:  # nobody watches it now: the next reader starts it afresh
                del self._subscribers[name]
                del self._channels[name]
                del self._next_read[name]

    def claim(self, client: str, cap: int) -> StreamSlot | None:
        """One more open stream for *client*, or None when it holds *cap* already (0: no cap).

        Counted in this process only: a stream lives as long as its reader, and a count kept
        elsewhere would outlive a worker that dies without releasing its slots.
        """
        with self._lock:
            held = self._streams_of.get(client, 0)
            if cap and held >= cap:
                return None
            self._streams_of[client] = held + 1
        return StreamSlot(self, client)

    def _release(self, slot: StreamSlot) -> None:
        with self._lock:
            if slot._hub is None:  # released already
                return
            slot._hub = None
            held = self._streams_of.get(slot.client, 0) - 1
            if held > 0:
                self._streams_of[slot.client] = held
            else:
                self._streams_of.pop(slot.client, None)

    def streams_of(self, client: str) -> int:
        with self._lock:
            return self._streams_of.get(client, 0)

    def channel(self, name: str) -> Channel | None:
        with self._lock:
            return self._channels.get(name)

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
        next_beat = time.monotonic() + self.beat_every
        while True:
            try:
                with self._lock:
                    wake = min([next_beat, *self._next_read.values()])
                names, everything = self._wait_for_news(max(0.0, wake - time.monotonic()))
                failed = False
                for channel in self._due(names, everything):
                    failed |= not self._read(channel)
                if time.monotonic() >= next_beat:
                    self._heartbeat()
                    next_beat = time.monotonic() + self.beat_every
            except Exception:  # the one thread every reader depends on must not die
                log.exception("live: the hub's pass failed")
                failed = True
            if failed:  # the database is away, say: do not spin; the next poll retries
                time.sleep(1)

    def _wait_for_news(self, timeout: float) -> tuple[set[str], bool]:
        """The channels with news, gathered (several publications, one read); *True* for
        "read them all" (the broker may have missed some)."""
        names: set[str] = set()
        try:
            item = self._news.get(timeout=timeout)
        except queue.Empty:
            return names, False
        everything = item is None
        while True:
            if item is not None:
                names.add(item)
            if not self._news.qsize():
                return names, everything
            item = self._news.get_nowait()
            everything |= item is None

    def _due(self, names: set[str], everything: bool) -> list[Channel]:
        """The channels to read now: those with news, and those whose poll is due."""
        now = time.monotonic()
        with self._lock:
            due = [channel for name, channel in self._channels.items()
                   if everything or name in names or self._next_read[name] <= now]
            for channel in due:
                self._next_read[channel.name] = now + channel.poll_seconds
        return due

    def _read(self, channel: Channel) -> bool:
        try:
            with self.app.app_context():
                for page in channel.read():
                    self._fan_out(channel.name, Batch.of(page))
        except Exception:
            log.exception("live: reading channel %s failed; retrying on its next poll",
                          channel.name)
            return False
        return True

    def _fan_out(self, name: str, batch: Batch) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(name, ()))
        for subscriber in subscribers:
            try:
                subscriber.queue.put_nowait(batch)
            except queue.Full:  # a reader that stopped reading: drop it; it will reconnect
                subscriber.dropped = True
                self.unsubscribe(subscriber)

    def _heartbeat(self) -> None:
        """Queue a heartbeat for each reader that would otherwise go quiet too long.

        Readers wait on their queue without a timer of their own (thousands of timers cost more
        than one pass here), and a reader's interval runs from its own last write, so readers who
        connected together are not all beaten in the same instant for ever after.
        """
        due = time.monotonic() - (self.heartbeat_seconds - self.beat_every)
        with self._lock:
            quiet = [s for subs in self._subscribers.values() for s in subs if s.last_write <= due]
        for subscriber in quiet:
            subscriber.last_write = time.monotonic()
            try:
                subscriber.queue.put_nowait(HEARTBEAT)
            except queue.Full:
                pass


def get_hub(app: Flask) -> Hub:
    hub = app.extensions.get("parley.hub")
    if hub is None:
        hub = Hub(app, get_broker(app), float(app.config["LIVE_HEARTBEAT_SECONDS"]))
        hub = app.extensions.setdefault("parley.hub", hub)
    return hub
