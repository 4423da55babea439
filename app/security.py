"""Cross-site checks for the pages that must stay cacheable, and small signed tokens."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request

from app.signing import Purpose, check_fingerprint, fingerprint


def same_origin() -> bool:
    """Is this request from one of our own pages? (CSRF defence that needs no per-reader token.)

    Browsers send `Sec-Fetch-Site` (and `Origin` on every POST); an old client that sends
    neither falls back to `Referer`. A request that carries none of them is refused.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


MODERATION_HASH = Purpose("moderation-hash", None)


def moderation_hash(comment_id: int, stamp: int) -> str:
    """The signed value WordPress puts in `?unapproved=ID&moderation-hash=…` links: of the id and
    when the comment was made (`Comment.stamp`), so it shows nothing of a later comment that is
    given the same id."""
    return fingerprint(MODERATION_HASH, f"{comment_id}:{stamp}")


def check_moderation_hash(comment_id: int, stamp: int, value: str) -> bool:
    return check_fingerprint(MODERATION_HASH, f"{comment_id}:{stamp}", value)
