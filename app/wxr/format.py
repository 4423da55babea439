"""The WXR vocabulary both directions share: namespaces, WordPress's comment states, Parley's meta."""

from __future__ import annotations

from app.models import CommentStatus

WP = "http://wordpress.org/export/1.2/"
EXCERPT = "http://wordpress.org/export/1.2/excerpt/"
NAMESPACES = {
    "excerpt": EXCERPT,
    "content": "http://purl.org/rss/1.0/modules/content/",
    "wfw": "http://wellformedweb.org/CommentAPI/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "wp": WP,
}

# WordPress's comment_approved values.
STATUS_FROM_WP = {
    "1": CommentStatus.APPROVED,
    "approve": CommentStatus.APPROVED,
    "0": CommentStatus.PENDING,
    "hold": CommentStatus.PENDING,
    "spam": CommentStatus.SPAM,
    "trash": CommentStatus.TRASH,
    "post-trashed": CommentStatus.TRASH,  # a comment on a post that was trashed
}
STATUS_TO_WP = {
    CommentStatus.APPROVED: "1",
    CommentStatus.PENDING: "0",
    CommentStatus.SPAM: "spam",
    CommentStatus.TRASH: "trash",
}
# How summaries list the states: as the moderation queues, approved first.
REPORT_ORDER = (CommentStatus.APPROVED, CommentStatus.PENDING, CommentStatus.SPAM,
                CommentStatus.TRASH)
PING_TYPES = {"pingback", "trackback"}

# Parley's own post fields, carried in post meta (leading underscore: hidden in WordPress).
META_BYLINE = "_parley_byline"
META_SOURCE_LINE = "_parley_source_line"
META_LIKES = "_parley_like_count"


def plural(word: str, count: int) -> str:
    return word if count == 1 else f"{word}s"
