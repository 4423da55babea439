"""The fresh window: an anonymous page validated a moment ago is served again without Flask.

The page cache (app/blog/cache.py) validates its key against the database on every request: two
small queries plus the whole Flask request cycle, for bytes it already holds. Most readers of a
busy article arrive within a second of each other, so this WSGI layer, in front of Flask, keeps
the exact response (status, headers, body) of each page the page cache answered, for
PAGE_CACHE_FRESH_SECONDS (default 1 s), and answers the same address from it meanwhile — what
nginx's "micro-caching" does, inside each worker.

Why a page up to a second old loses nothing:
- the page carries the live-event position it was rendered at, and its live stream replays
  every event after it (`Last-Event-ID`), so a reader with JS gets anything newer at once;
- every change that shows on a page empties this process's window when it commits
  (`pages_changed()`, registered where the change is made), so the worker that took a change never
  serves the page from before it; another worker serves it at most PAGE_CACHE_FRESH_SECONDS late;
- only passive anonymous readers are answered here: a request with a signed-in (or "remember
  me") session, or the cookie of someone who has just commented (`parley_mine`, so a no-JS
  author always sees their own comment after the redirect), or `?unapproved=`, goes to Flask.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, current_app, has_app_context, request
from flask_login.config import COOKIE_NAME as REMEMBER_COOKIE
from werkzeug.http import parse_etags

from app.comments.cookies import MINE_COOKIE
from app.database import after_commit

_EXTENSION = "parley.fresh_pages"
_MARK = "parley.page_cache.etag"  # set on the WSGI environ by cache.finish() for a validated page

Address = tuple[str, str, str, str]
StartResponse = Callable[..., Any]


class FreshPages:
    """WSGI middleware holding, per address, the last validated anonymous page for a moment."""

    def __init__(self, app: Flask, wsgi_app: Callable, seconds: float, size: int) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.seconds = seconds
        self.size = max(1, size)
        self._pages: dict[Address, tuple[float, str, list[tuple[str, str]], bytes, str]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # moves on every clear(): a page validated before it is not kept

    # --- what may be answered here ------------------------------------------------------------

    def _address(self, environ: dict) -> Address | None:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        query = environ.get("QUERY_STRING", "")
        if "unapproved" in query:
            return None
        if environ.get("HTTP_COOKIE") and not self._passive(environ):
            return None
        return (environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST", ""),
                environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), query)

    def _passive(self, environ: dict) -> bool:
        """Do this request's cookies leave the reader anonymous, with nothing of their own to
        see? The session is opened by the app's own session interface, as Flask would."""
        request = self.app.request_class(environ)
        config = self.app.config
        if (MINE_COOKIE in request.cookies
                or config.get("REMEMBER_COOKIE_NAME", REMEMBER_COOKIE) in request.cookies):
            return False
        if config["SESSION_COOKIE_NAME"] not in request.cookies:
            return True
        session = self.app.session_interface.open_session(self.app, request)
        return session is not None and "_user_id" not in session

    # --- the window --------------------------------------------------------------------------

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._pages.clear()

    def _get(self, address: Address):
        page = self._pages.get(address)
        if page is None or page[0] < time.monotonic():
            return None
        return page

    def _renew(self, generation: int, address: Address, etag: str) -> None:
        """Flask has just validated *etag* again (a 304): the bytes held for it are fresh again."""
        with self._lock:
            page = self._pages.get(address)
            if generation == self._generation and page is not None and page[4] == etag:
                self._pages[address] = (time.monotonic() + self.seconds, *page[1:])

    def _keep(self, generation: int, address: Address, status: str,
              headers: list[tuple[str, str]], body: bytes, etag: str) -> None:
        with self._lock:
            if generation != self._generation:  # something was committed while Flask answered
                return
            if len(self._pages) >= self.size and address not in self._pages:
                self._pages.clear()  # many addresses in one second: start over, stay small
            self._pages[address] = (time.monotonic() + self.seconds, status, headers, body, etag)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        address = self._address(environ)
        if address is None:
            return self.wsgi_app(environ, start_response)
        page = self._get(address)
        if page is not None:
            return self._answer(environ, start_response, page)
        return self._through(environ, start_response, address)

    def _answer(self, environ: dict, start_response: StartResponse, page) -> Iterable[bytes]:
        _, status, headers, body, etag = page
        if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains_weak(etag):
            start_response("304 Not Modified",
                           [(k, v) for k, v in headers if k.lower() not in _NOT_ON_304])
            return []
        start_response(status, headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def _through(self, environ: dict, start_response: StartResponse,
                 address: Address) -> Iterable[bytes]:
        """Let Flask answer; keep its answer if it is a validated 200 anonymous page."""
        answered: dict[str, Any] = {}
        generation = self._generation

        def capture(status, headers, exc_info=None):
            answered["status"], answered["headers"] = status, headers
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, capture)
        etag = environ.get(_MARK)
        if etag is not None and answered.get("status", "").startswith("304 "):
            self._renew(generation, address, etag)
            return result
        if (etag is None or environ["REQUEST_METHOD"] != "GET"
                or not answered.get("status", "").startswith("200 ")
                or any(k.lower() == "set-cookie" for k, _ in answered["headers"])):
            return result
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        self._keep(generation, address, answered["status"], list(answered["headers"]), body, etag)
        return [body]


_NOT_ON_304 = {"content-length", "content-type"}


def mark_validated(etag: str) -> None:
    """Tell the window that this request's page was checked against the database just now."""
    request.environ[_MARK] = etag


def install(app: Flask) -> None:
    """Put the fresh window in front of *app* when the page cache and the window are both on."""
    seconds = float(app.config.get("PAGE_CACHE_FRESH_SECONDS", 0) or 0)
    size = int(app.config.get("PAGE_CACHE_SIZE", 0) or 0)
    if seconds <= 0 or size <= 0:
        return
    fresh = FreshPages(app, app.wsgi_app, seconds, size)
    app.extensions[_EXTENSION] = fresh
    app.wsgi_app = fresh


def pages_changed() -> None:
    """A change that shows on some page is in the current transaction: once it commits, this
    process's window is emptied, so the worker that took the change never serves the page from
    before it. Called by whatever makes such a change (the comment gate, likes, settings)."""
    fresh = current_app.extensions.get(_EXTENSION) if has_app_context() else None
    if fresh is not None:
        after_commit(fresh.clear, key=_EXTENSION)
