"""The Server-Sent Events wire format: frames encoded once, however many readers they go to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from app.models import Event

# The longest a reader may go without a byte (LIVE_HEARTBEAT_SECONDS may only shorten it):
# proxies and load balancers commonly close a connection quiet for 30-60 s.
HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class WireEvent:
    """One event: *id* is what a reconnecting EventSource sends back as Last-Event-ID."""

    id: int | None
    kind: str
    data: str  # JSON

    @classmethod
    def of(cls, kind: str, data: dict[str, Any], id: int | None = None) -> WireEvent:
        return cls(id, kind, json.dumps(data, ensure_ascii=False))

    @classmethod
    def from_row(cls, row: Event) -> WireEvent:
        return cls(row.id, row.kind, row.data)

    def encode(self) -> str:
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.kind}\ndata: {self.data}\n\n"

    @cached_property
    def wire(self) -> bytes:
        """The encoded frame, built once per event however many readers it goes to."""
        return self.encode().encode("utf-8")


@dataclass(frozen=True, eq=False)
class Batch:
    """Events read together, handed to every reader of a channel as one queue item and one write.

    *first* and *last* are the first and last event ids (None for a heartbeat), so a reader of an
    ordered channel can tell at a glance whether it already had some of them from its backlog.
    """

    events: tuple[WireEvent, ...]
    wire: bytes
    first: int | None
    last: int | None

    @classmethod
    def of(cls, events: list[WireEvent]) -> Batch:
        ids = [e.id for e in events if e.id is not None]
        return cls(tuple(events), b"".join(e.wire for e in events),
                   ids[0] if ids else None, ids[-1] if ids else None)


# A comment line: keeps proxies and readers from timing out. Queued by the hub, as one shared
# object, for each reader nothing was written to for a while.
HEARTBEAT = Batch((), b": heartbeat\n\n", None, None)

EXPIRED = WireEvent.of("expired", {"message": "Your session has expired. Please sign in again."})


def hello(retry_ms: int, text: str) -> bytes:
    """The first frame: the reconnection delay, and a comment so proxies flush the headers now."""
    return f"retry: {retry_ms}\n: {text}\n\n".encode()
