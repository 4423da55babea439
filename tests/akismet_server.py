"""A server on 127.0.0.1 that speaks Akismet's REST API as Akismet documents it
(https://akismet.com/developers/), for the tests: Parley is pointed at it with AKISMET_API_URL.

Each verb is a form-encoded POST to `/1.1/<verb>` carrying `api_key`:

- `verify-key` (`api_key`, `blog`) answers `valid` or `invalid` (with `X-akismet-debug-help`);
- `comment-check` (`blog`, `user_ip` required) answers `true` (spam; with
  `X-akismet-pro-tip: discard` for blatant spam) or `false`; `invalid` for a bad key and
  `Missing required field: …` for a missing one, each with `X-akismet-debug-help`. As Akismet's
  own test values do, `comment_author=akismet-guaranteed-spam` is spam and
  `user_role=administrator` is ham, whatever `verdict` says;
- `submit-spam` / `submit-ham` answer "Thanks for making the web a better place."

Every request is recorded (verb, form fields, headers) so a test can check what was sent. A test
can make the server slow (`delay`), or answer something that is not a verdict (`broken`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

KEY = "parley-test-key"
THANKS = "Thanks for making the web a better place."
REQUIRED = ("blog", "user_ip")


@dataclass
class Call:
    verb: str
    fields: dict[str, str]
    headers: dict[str, str]


class AkismetServer:
    """Start with `with AkismetServer() as akismet:`; `akismet.url` is its AKISMET_API_URL."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.verdict = "false"  # what comment-check says: "false", "true" or "discard"
        self.delay = 0.0  # seconds to wait before answering
        self.broken: tuple[int, str] | None = None  # (status, body) answered instead
        self.arrived = threading.Condition()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/1.1/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AkismetServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, verb: str) -> list[Call]:
        return [c for c in self.calls if c.verb == verb]

    def wait_for(self, verb: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """The calls of *verb*, once there are *count* of them (or *timeout* has passed)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.of(verb)) < count and time.monotonic() < deadline:
                self.arrived.wait(max(0.0, deadline - time.monotonic()))
        return self.of(verb)

    def wsgi(self, environ, start_response):
        request = Request(environ)
        verb = request.path.removeprefix("/1.1/")
        call = Call(verb, dict(request.form), dict(request.headers))
        with self.arrived:
            self.calls.append(call)
            self.arrived.notify_all()
        if self.delay:
            time.sleep(self.delay)
        return self.answer(request, call)(environ, start_response)

    def answer(self, request: Request, call: Call) -> Response:
        if request.method != "POST" or not request.path.startswith("/1.1/"):
            return Response("Not found", 404)
        if self.broken is not None:
            status, body = self.broken
            return Response(body, status)
        fields = call.fields
        if call.verb == "verify-key":
            if fields.get("api_key") == KEY and fields.get("blog"):
                return Response("valid")
            return _help("invalid", "We were unable to verify your API key.")
        if fields.get("api_key") != KEY:
            return _help("invalid", "We were unable to verify your API key.")
        if call.verb in ("submit-spam", "submit-ham"):
            return Response(THANKS)
        if call.verb != "comment-check":
            return Response("Not found", 404)
        for name in REQUIRED:
            if not fields.get(name):
                return _help(f"Missing required field: {name}.", f"Empty \"{name}\" value")
        if fields.get("user_role") == "administrator":
            return Response("false")
        verdict = "true" if fields.get("comment_author") == "akismet-guaranteed-spam" \
            else self.verdict
        if verdict == "discard":
            return Response("true", headers={"X-akismet-pro-tip": "discard"})
        return Response(verdict)


def _help(body: str, help_text: str) -> Response:
    return Response(body, headers={"X-akismet-debug-help": help_text})
