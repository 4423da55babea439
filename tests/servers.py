"""Real servers for tests that need a socket: a threaded WSGI server, and SSE readers."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from werkzeug.serving import make_server


class LiveServer:
    """Serve *app* on 127.0.0.1 on a free port from a thread, as a browser would reach it."""

    def __init__(self, app) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class SSEEvent:
    id: int | None
    event: str
    data: str

    @property
    def json(self):
        return json.loads(self.data)


@dataclass
class SSEReader:
    """Read a text/event-stream in a thread; events arrive in `events` with their arrival time."""

    url: str
    last_event_id: int | None = None
    events: list[SSEEvent] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    status: int | None = None
    headers: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._conn: http.client.HTTPConnection | None = None
        self._sock = None
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.connected.wait(10):
            raise TimeoutError(f"no response from {self.url}")

    def _run(self) -> None:
        parts = urlsplit(self.url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._conn.request("GET", path, headers=headers)
        self._sock = self._conn.sock
        response = self._conn.getresponse()
        self.status = response.status
        self.headers = dict(response.getheaders())
        self.connected.set()
        block: dict[str, str] = {}
        try:
            while not self._stop.is_set():
                raw = response.fp.readline()
                if not raw:
                    break
                line = raw.decode("utf-8").rstrip("\n")
                if line == "":
                    if "data" in block or "event" in block:
                        self.events.append(SSEEvent(
                            int(block["id"]) if "id" in block else None,
                            block.get("event", "message"), block.get("data", "")))
                        self.arrivals.append(time.monotonic())
                    block = {}
                elif line.startswith(":"):
                    self.comments.append(line[1:].strip())
                else:
                    name, _, value = line.partition(":")
                    block[name] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError):
            pass

    def wait_for(self, count: int, timeout: float = 10) -> list[SSEEvent]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.events

    def close(self) -> None:
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(2)
            except OSError:
                pass
        if self._conn is not None:
            self._conn.close()
        self.thread.join(5)
