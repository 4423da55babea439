"""The one Server-Sent Events stream, for a post's readers and for the moderation queue alike."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable, Iterator

from flask import Flask

from app.limits import client_key
from app.live.hub import Channel, StreamSlot, get_hub
from app.live.posts import PostChannel
from app.live.queue import QueueChannel, RenderRow
from app.live.wire import EXPIRED, hello


class TooManyStreams(Exception):
    """The client holds LIVE_MAX_STREAMS_PER_IP open streams in this process already."""

    retry_after = 30  # seconds: a slot frees when one of its streams ends, which nobody can tell


class _Held:
    """A stream's frames, holding its reader's slot until the server closes the response.

    A WSGI server closes every response it was given, however it ended (PEP 3333) — a reader
    gone, a HEAD request answered without a body, a stream never started — so the slot goes back
    in `close()`; a generator's own `finally` runs only if the generator was started.
    """

    def __init__(self, frames: Iterator[bytes], slot: StreamSlot) -> None:
        self.frames = frames
        self.slot = slot

    def __iter__(self) -> Iterator[bytes]:
        return self.frames

    def close(self) -> None:
        try:
            self.frames.close()  # type: ignore[attr-defined]  (a generator)
        finally:
            self.slot.release()


def post_stream(app: Flask, post_id: int, after: int, log_end: int,
                ip: str | None = None) -> Iterable[bytes]:
    """*post_id*'s public events after *after*, forever (*log_end*: its last event id now),
    counted as one of *ip*'s open streams (TooManyStreams when it has its fill)."""
    channel = PostChannel(post_id, log_end, float(app.config["LIVE_POLL_SECONDS"]))
    cap = app.config["LIVE_MAX_STREAMS_PER_IP"] if app.config["RATELIMIT_ENABLED"] else 0
    if not (ip and cap):
        return stream(app, channel, after)
    slot = get_hub(app).claim(client_key(ip), cap)
    if slot is None:
        raise TooManyStreams(ip)
    return _Held(stream(app, channel, after), slot)


def queue_stream(app: Flask, after: int | None, until: float,
                 render_row: RenderRow) -> Iterator[bytes]:
    """The moderation queue's events until *until* (a time.time(): the admin session's end)."""
    channel = QueueChannel(render_row, float(app.config["ADMIN_LIVE_POLL_SECONDS"]))
    return stream(app, channel, after, until=until)


def stream(app: Flask, channel: Channel, after: int | None, *,
           until: float | None = None) -> Iterator[bytes]:
    """Yield *channel*'s Server-Sent Events for a reader who has seen up to *after*.

    The first frame goes out at once (proxies flush the headers), then the backlog, then what
    the hub queues, heartbeats included, until *until* passes (an `expired` event then ends it)
    or the reader stops reading. No database connection is held while waiting: the backlog is
    read in short app contexts of its own, and the caller has closed its session.
    """
    hub = get_hub(app)
    subscriber = hub.subscribe(channel)
    channel = subscriber.channel
    inbox = subscriber.queue
    try:
        yield hello(channel.retry_ms, channel.greeting)
        last = after or 0
        for page in channel.backlog(app, after):
            if page:
                yield b"".join(event.wire for event in page)
                last = page[-1].id or last
        while not subscriber.dropped:
            if until is not None and time.time() >= until:
                yield EXPIRED.wire
                return
            wait = None if until is None else max(0.0, until - time.time())
            try:  # the hub queues a heartbeat when all is quiet
                batches = [inbox.get(timeout=wait)]
            except queue.Empty:  # the deadline came
                continue
            # What arrived together goes out in one write. Only this reader takes from its queue,
            # so a non-empty queue has an item for get_nowait(). Asking get_nowait() alone raised
            # and caught an Empty per reader per event: a fan-out to 5,000 queues took 63-68 ms
            # that way, 33-52 ms this way.
            while len(batches) < 50 and inbox.qsize():
                batches.append(inbox.get_nowait())
            frames = []
            for batch in batches:
                if not channel.ordered or batch.first is None or batch.first > last:
                    frames.append(batch.wire)  # the same bytes for every reader
                else:  # some of it was in the backlog already
                    frames.extend(event.wire for event in batch.events if event.id > last)
                if channel.ordered and batch.last is not None:
                    last = max(last, batch.last)
            if not frames:
                continue
            subscriber.last_write = time.monotonic()
            yield frames[0] if len(frames) == 1 else b"".join(frames)
    finally:
        hub.unsubscribe(subscriber)
