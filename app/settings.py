"""Discussion settings: stored in the database, with WordPress's defaults."""

from __future__ import annotations

import json
from typing import Any

from app.extensions import db
from app.models import Setting

DEFAULTS: dict[str, Any] = {
    # Threaded comments, this many levels deep (WordPress allows 2–10; default 5).
    "thread_comments_depth": 5,
    # "everyone" | "unknown" (authors without a previously approved comment) | "nobody"
    "comment_moderation": "unknown",
    "require_name_email": True,
    "comment_flood_seconds": 15,
}


def get_setting(key: str) -> Any:
    """The stored value of *key*, or its default."""
    row = db.session.get(Setting, key)
    return json.loads(row.value) if row is not None else DEFAULTS[key]


def set_setting(key: str, value: Any) -> None:
    """Store *value* for *key* in the current transaction."""
    if key not in DEFAULTS:
        raise KeyError(key)
    row = db.session.get(Setting, key)
    if row is None:
        db.session.add(Setting(key=key, value=json.dumps(value)))
    else:
        row.value = json.dumps(value)
