"""Discussion settings: stored in the database, with WordPress's defaults."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import g

from app.extensions import db
from app.models import Setting

DEFAULTS: dict[str, Any] = {
    # Threaded comments, this many levels deep (WordPress allows 2–10; default 5).
    "thread_comments_depth": 5,
    # "everyone" | "unknown" (authors without a previously approved comment) | "nobody"
    "comment_moderation": "unknown",
    "require_name_email": True,
    "comment_flood_seconds": 15,
    # A commenter may edit or delete their own comment from the same browser for this long.
    "comment_edit_minutes": 15,
    # --- Discussion settings added by the moderation screens (issue 5) ---
    # Close comments on posts older than this many days (WordPress: off, 14).
    "close_comments_for_old_posts": False,
    "close_comments_days_old": 14,
    # Hold a comment with this many links or more (0: never). WordPress's default is 2.
    "comment_max_links": 2,
    # One word, name, address or IP fragment per entry, matched as WordPress matches them.
    "moderation_keys": [],  # → pending
    "disallowed_keys": [],  # → trash
    # Break comments into pages of this many top-level comments, showing this page first.
    "page_comments": False,
    "comments_per_page": 50,
    "default_comments_page": "newest",  # "newest" | "oldest"
    "comment_order": "asc",  # "asc" (older at the top) | "desc"
    # What a banned author's comment gets: "refuse" (a polite message) or "hold" (silently).
    "ban_action": "refuse",
    # A ban on user@example.com also catches user+anything@example.com: the same mailbox at
    # nearly every provider, and the cheapest way round a ban.
    "ban_plus_addresses": True,
    # Email the moderators when a comment is held for moderation.
    "moderation_notify": True,
}


_ALL = sa.select(Setting.key, Setting.value)  # built once: it runs on every request


def _stored() -> dict[str, Any]:
    """Every stored setting, read once per request (or app context) in one query."""
    cached = g.get("parley_settings")
    if cached is None:
        rows = db.session.connection().execute(_ALL)
        cached = g.parley_settings = {key: json.loads(value) for key, value in rows}
    return cached


def get_setting(key: str) -> Any:
    """The stored value of *key*, or its default."""
    stored = _stored()
    return stored[key] if key in stored else DEFAULTS[key]


def set_setting(key: str, value: Any) -> None:
    """Store *value* for *key* in the current transaction."""
    if key not in DEFAULTS:
        raise KeyError(key)
    row = db.session.get(Setting, key)
    if row is None:
        db.session.add(Setting(key=key, value=json.dumps(value)))
    else:
        row.value = json.dumps(value)
    g.pop("parley_settings", None)
