"""The broker: carries "channel C has news" between processes; the news itself is in the database.

In-process by default; Redis pub/sub when `REDIS_URL` is set, with ONE subscription per process
whatever the number of channels and readers (as CTFd does it, not one per browser as flask-sse).
A message is a channel's name: a post's id ("12"), or "queue" for the moderation queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

from flask import Flask, current_app

from app.database import after_commit
from app.live.wire import HEARTBEAT_SECONDS

log = logging.getLogger(__name__)

OnNews = Callable[[str | None], None]
_EXTENSION = "parley.broker"


class Broker(Protocol):
    def publish(self, channel: str) -> None: ...

    def start(self, on_news: OnNews) -> None:
        """Call *on_news(channel)* for each publication; *None* means "something may be missed"."""

    def ping(self) -> bool: ...


class MemoryBroker:
    """One process: publications go straight to this process's hub."""

    def __init__(self) -> None:
        self._listeners: list[OnNews] = []

    def publish(self, channel: str) -> None:
        for listener in list(self._listeners):
            listener(channel)

    def start(self, on_news: OnNews) -> None:
        self._listeners.append(on_news)

    def ping(self) -> bool:
        return True


class RedisBroker:
    """Several processes or hosts: one Redis pub/sub subscription per process."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis  # only sites with REDIS_URL need it

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                           health_check_interval=30)
        self._url = url
        self.channel = f"{prefix}live"
        self._started = False
        self._lock = threading.Lock()

    def publish(self, channel: str) -> None:
        try:
            self._redis.publish(self.channel, channel)
        except Exception as exc:  # the change is stored; the hubs' polling will deliver it
            log.warning("live: could not publish to Redis (%s); readers get it by polling", exc)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except Exception:
            return False

    def start(self, on_news: OnNews) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._listen, args=(on_news,), name="parley-redis-live",
                         daemon=True).start()

    def _listen(self, on_news: OnNews) -> None:
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
                    data = message["data"]
                    # a name no channel has (another version's message, say) is news to nobody
                    on_news(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data))
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


def get_broker(app: Flask) -> Broker:
    broker = app.extensions.get(_EXTENSION)
    if broker is None:
        url = app.config.get("REDIS_URL")
        broker = RedisBroker(url, app.config["REDIS_PREFIX"]) if url else MemoryBroker()
        broker = app.extensions.setdefault(_EXTENSION, broker)
    return broker


def existing_broker(app: Flask) -> Broker | None:
    """This app's broker if anything has used it yet (the health check creates none)."""
    return app.extensions.get(_EXTENSION)


def publish_after_commit(channel: str) -> None:
    """Tell every process's hub that *channel* has news once the current transaction commits.

    Registered once per transaction and channel, however many changes ask; the broker is found
    now, in the change's own app context, so nothing is looked up at commit time.
    """
    broker = get_broker(current_app._get_current_object())
    after_commit(partial(broker.publish, channel), key=("live", channel))
