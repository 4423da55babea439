"""Cross-site checks for the pages that must stay cacheable, and small signed tokens."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from flask import current_app, request


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


def moderation_hash(comment_id: int) -> str:
    """The signed value WordPress puts in `?unapproved=ID&moderation-hash=…` links."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"moderation:{comment_id}".encode(), hashlib.sha256).hexdigest()[:24]


def check_moderation_hash(comment_id: int, value: str) -> bool:
    return hmac.compare_digest(moderation_hash(comment_id), value or "")
