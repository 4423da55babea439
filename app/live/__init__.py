"""Live updates: one hub per process, channels for posts and for the moderation queue.

How an event travels:
1. A change records its events in its own transaction (`comment_published` & co. write rows of
   the `events` table for the post; `queue_changed` marks the moderation queue), and registers
   "channel C has news" with the one after-commit queue (app/database.py).
2. After the commit the broker carries that name to every process — in-process by default,
   Redis pub/sub with `REDIS_URL` (ONE subscription per process).
3. Each process's hub reads the channel once, in order, and hands the same encoded bytes to a
   bounded queue per reader; it also polls every channel now and then, so changes made where no
   broker reaches (the command line without Redis, a Redis outage) still arrive, a little later.
4. One stream serves every reader: a first frame at once, the backlog a reconnecting reader
   missed (`Last-Event-ID`), then what the hub queues, with a heartbeat when all is quiet.

    wire.py    the frames: WireEvent, Batch, heartbeat
    events.py  recording a post's events in the change's transaction; their public payloads
    broker.py  Broker, MemoryBroker, RedisBroker; publishing after commit
    hub.py     the per-process hub: one thread, one heartbeat pass, one fan-out
    posts.py   a post's channel (public: the events table)
    queue.py   the moderation queue's channel (admins only: emails and IPs)
    stream.py  the one Server-Sent Events generator
"""

from app.live.broker import Broker, MemoryBroker, RedisBroker, existing_broker, get_broker
from app.live.events import (
    comment_depth,
    comment_event_data,
    comment_published,
    comment_removed,
    comment_updated,
    record,
)
from app.live.hub import Hub, get_hub
from app.live.queue import QUEUE, queue_changed, queue_counts
from app.live.stream import post_stream, queue_stream, stream
from app.live.wire import WireEvent

__all__ = [
    "QUEUE", "Broker", "Hub", "MemoryBroker", "RedisBroker", "WireEvent", "comment_depth",
    "comment_event_data", "comment_published", "comment_removed", "comment_updated",
    "existing_broker", "get_broker", "get_hub", "post_stream", "queue_changed", "queue_counts",
    "queue_stream", "record", "stream",
]
