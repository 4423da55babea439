"""Addresses of posts and comment pages, WordPress-style: a pure helper at the bottom.

Takes what it needs from the post object it is given; imports nothing from `app` but the
wording module (the permalink's date is the blog's local date).
"""

from __future__ import annotations

import unicodedata
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from flask import current_app, has_request_context, request, url_for

from app.words import local_time


class _Dated(Protocol):
    published_at: Any
    slug: str


def site_url() -> str:
    """The site's address for links that leave the request (mail, exports): the request's own
    host while there is one, else SITE_URL, else http://localhost."""
    if has_request_context():
        return request.host_url.rstrip("/")
    return current_app.config["SITE_URL"] or "http://localhost"


def same_site_path(target: object, under: str = "/") -> str | None:
    """*target* if it is a plain path on this site (under *under*), else None: the one check for
    every `next` a client sends, made before anything is done with it.

    Refused: anything not text, an absolute or scheme-relative address (`https://…`, `//host`,
    `/\\host`), a control character (a CR or LF would split the Location header: a 500),
    `.`/`..` segments, and paths outside *under*. The fragment is dropped: where to land is ours.
    """
    if not isinstance(target, str) or not target.startswith("/") or len(target) > 2000:
        return None
    if target.startswith("//") or "\\" in target:
        return None
    if any(unicodedata.category(c) == "Cc" for c in target):
        return None
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        return None
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        return None  # browsers resolve these (and "%2e%2e") out of *under*
    root = under.rstrip("/")
    if root and parts.path != root and not parts.path.startswith(root + "/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def permalink_args(post: _Dated) -> dict[str, Any]:
    """The parts of *post*'s WordPress-style permalink (its date in the blog's timezone)."""
    local = local_time(post.published_at)
    return {"year": local.year, "month": local.month, "day": local.day, "slug": post.slug}


def post_url(post: _Dated, **values: Any) -> str:
    return url_for("blog.permalink", **permalink_args(post), **values)


def comment_page_url(post: _Dated, number: int, default: int | None = None) -> str:
    """WordPress's address for a page of comments; the default page is the permalink itself."""
    if number == default:
        return post_url(post)
    return url_for("blog.comment_page_view", **permalink_args(post), page=number)
