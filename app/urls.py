"""Addresses of posts and comment pages, WordPress-style: a pure helper at the bottom.

Takes what it needs from the post object it is given; imports nothing from `app` but the
wording module (the permalink's date is the blog's local date).
"""

from __future__ import annotations

from typing import Any, Protocol

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
