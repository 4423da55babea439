"""The anonymous article page, rendered once per change and served as the same bytes to everyone.

The page an anonymous reader gets depends only on what is in the database, so its key is built
from what can change it, read fresh on every request (two small queries):

- the post's last live event id — every new approved comment, edit, approval, removal and count
  change writes an event in the change's own transaction (app/live/events.py), so the id moves exactly
  when the visible comments do;
- the post row's `updated_at` (title, body, likes, comments open) and the Discussion settings
  (all their rows, hashed) — a setting change shows on the next request;
- the address asked for (host, path, query) and a fingerprint of the templates and static files.

A change made behind Parley's back (raw SQL on the comments table) writes no event and is not
noticed until something else moves the key: the price of a key that costs one index lookup
whatever the number of comments. Operators who edit rows by hand set PAGE_CACHE_SIZE=0 or restart.

A hit is served without rendering; a reader (or proxy) that already has those bytes gets a 304.
Signed-in readers, `?unapproved=` links, error re-renders and any page rendered with extra
context are never cached. Each process keeps its own small LRU: workers agree because the key
comes from the database, not from the process.

In front of Flask, the fresh window (app/fresh.py) answers a page this worker validated less
than PAGE_CACHE_FRESH_SECONDS ago without asking the database again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, Response, current_app, request
from flask_login import current_user

from app import fresh
from app.extensions import db
from app.models import Event, Post, Setting, utcnow
from app.settings import DEFAULTS

_EXTENSION = "parley.page_cache"


@dataclass(frozen=True)
class Entry:
    etag: str
    body: bytes
    mimetype: str


class PageCache:
    """A small thread-safe LRU of rendered pages for one process."""

    def __init__(self, size: int, fingerprint: str) -> None:
        self.size = size
        self.fingerprint = fingerprint
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _code_fingerprint(app: Flask) -> str:
    """Templates and static files as deployed: a new release never serves an old page or ETag."""
    digest = hashlib.sha256()
    for folder in (app.template_folder, app.static_folder):
        root = Path(app.root_path, folder) if folder else None
        if root is None or not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def get_cache(app: Flask) -> PageCache | None:
    size = app.config["PAGE_CACHE_SIZE"]
    if size <= 0:
        return None
    cache = app.extensions.get(_EXTENSION)
    if cache is None:
        cache = app.extensions.setdefault(_EXTENSION, PageCache(size, _code_fingerprint(app)))
    return cache


def cacheable() -> bool:
    """Is this request one whose page is the same for every anonymous reader?"""
    return (request.method in ("GET", "HEAD") and "unapproved" not in request.args
            and not current_user.is_authenticated)


def _key(row, settings: list[tuple[str, str]]) -> str:
    post_id, updated_at, published_at, last_event_id = row
    cache = current_app.extensions.get(_EXTENSION)
    parts = (
        cache.fingerprint if cache is not None else "",
        request.host_url, request.path, request.query_string.decode("latin-1"),
        str(post_id), str(last_event_id or 0), updated_at.isoformat(), repr(settings),
        str(_closed_by_age(published_at, dict(settings))),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _closed_by_age(published_at, settings: dict[str, str]) -> bool:
    """app.moderation.rules.closed_by_age, from the settings rows already read for the key.

    Closing by age happens with the passing of time, not with a change, so it is part of the key.
    """
    def value(key: str):
        return json.loads(settings[key]) if key in settings else DEFAULTS.get(key)

    if not value("close_comments_for_old_posts"):
        return False
    days = int(value("close_comments_days_old") or 0)
    return days > 0 and published_at < utcnow() - timedelta(days=days)


# Built once: a cache hit is two small Core queries on one pooled connection, no ORM objects.
# Every change readers can see goes through the comment service and writes an event (a bulk WXR
# import, which writes none, touches the post's updated_at instead): the key needs nothing more,
# and costs the same (an index lookup) at 10 comments or 10,000.
_LAST_EVENT = sa.select(sa.func.max(Event.id)).where(Event.post_id == Post.id).scalar_subquery()
_POST_COLUMNS = sa.select(Post.id, Post.updated_at, Post.published_at, _LAST_EVENT)
_BY_ID = _POST_COLUMNS.where(Post.id == sa.bindparam("post_id"))
_BY_SLUG = _POST_COLUMNS.where(Post.slug == sa.bindparam("slug"))
_LATEST = (_POST_COLUMNS.where(Post.published_at <= sa.bindparam("now"))
           .order_by(Post.published_at.desc(), Post.id.desc()).limit(1))
_SETTINGS = sa.select(Setting.key, Setting.value).order_by(Setting.key)


def _state(statement: sa.Select, params: dict) -> tuple[str, int] | None:
    """(cache key, last event id) of the post *statement* selects, as the database has it now."""
    connection = db.session.connection()
    row = connection.execute(statement, params).first()
    if row is None:
        return None
    settings = [tuple(r) for r in connection.execute(_SETTINGS)]
    return _key(row, settings), row[3] or 0


def page_key(post: Post) -> tuple[str, int]:
    """The cache key (and ETag) of *post*'s anonymous page as the database has it now, and the
    post's last live event id it was built from (the position the page's stream starts at)."""
    return _state(_BY_ID, {"post_id": post.id})


def cached_page(slug: str | None = None) -> Response | None:
    """Answer from the cache before any view work: the post named by *slug*, or the latest one.

    An entry exists for this exact address only if it was rendered with status 200 from it, so
    a hit needs no permalink check; anything else (a miss, a signed-in reader) returns None.
    """
    if get_cache(current_app) is None or not cacheable():
        return None
    if slug is not None:
        state = _state(_BY_SLUG, {"slug": slug})
    else:
        state = _state(_LATEST, {"now": utcnow()})
    return lookup(state[0]) if state is not None else None


def lookup(key: str) -> Response | None:
    """The cached page for *key*, or 304 when the reader (or a proxy) already holds these bytes."""
    if request.if_none_match.contains(key):  # even if another worker rendered them
        return finish(Response(mimetype="text/html"), key)
    cache = get_cache(current_app)
    entry = cache.get(key) if cache is not None else None
    if entry is None:
        return None
    return finish(Response(entry.body, mimetype=entry.mimetype), key)


def store(key: str, response: Response) -> Response:
    """Keep *response* (a freshly rendered anonymous page) under *key* and mark it shareable."""
    cache = get_cache(current_app)
    if cache is not None:
        cache.put(key, Entry(key, response.get_data(), response.mimetype))
    return finish(response, key)


def finish(response: Response, etag: str) -> Response:
    """Mark an anonymous page as shareable: any cache may keep it, but must revalidate first."""
    response.set_etag(etag)
    response.headers["Cache-Control"] = "public, no-cache"
    response.vary.add("Cookie")  # a signed-in reader's cookie gets a different page
    fresh.mark_validated(etag)
    return response.make_conditional(request)
