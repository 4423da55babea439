"""The Discussion settings' rules, each a small function the screen asks in turn."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from html import unescape

from app.models import Post, utcnow
from app.settings import get_setting

_LINK = re.compile(r"<a\s[^>]*href", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")

# The parts of a comment WordPress matches moderation and disallowed keywords against.
FIELD_LABELS = {"content": "comment", "author": "name", "email": "email", "url": "website",
                "ip": "IP", "user_agent": "user agent"}


def closed_by_age(post: Post) -> bool:
    """Has *post* outlived "Automatically close comments on posts older than N days"?"""
    if not get_setting("close_comments_for_old_posts"):
        return False
    days = int(get_setting("close_comments_days_old"))
    return days > 0 and post.published_at < utcnow() - timedelta(days=days)


def accepts_comments(post: Post) -> bool:
    """Open for comments: switched on for this post and not closed by age (Discussion settings)."""
    return post.comments_open and not closed_by_age(post)


def count_links(html: str) -> int:
    """The links a comment shows, in its rendered *html*: its own anchors and the bare URLs
    rendering turned into links."""
    return len(_LINK.findall(html))


def keyword_lines(value: str | Iterable[str]) -> list[str]:
    """A keyword list as stored: one entry per line, trimmed, without blanks or repeats."""
    lines = value.splitlines() if isinstance(value, str) else value
    seen: dict[str, None] = {}
    for line in lines:
        word = line.strip()
        if word:
            seen.setdefault(word, None)
    return list(seen)


def match_keywords(words: Iterable[str], fields: dict[str, str]) -> list[str]:
    """The reasons *fields* match *words*: a case-insensitive substring anywhere, as WordPress does.

    The comment is also matched with its HTML removed, so tags cannot split a disallowed word.
    """
    haystacks = dict(fields)
    content = fields.get("content", "")
    stripped = unescape(_TAG.sub("", content))
    reasons = []
    for word in words:
        needle = word.casefold()
        for name, value in haystacks.items():
            if needle in value.casefold() or (name == "content" and needle in stripped.casefold()):
                reasons.append(f"keyword “{word}” in {FIELD_LABELS.get(name, name)}")
                break
    return reasons
