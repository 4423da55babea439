"""Staging a WXR file's posts and comments in the session; the caller commits, once.

Comments are added to the session directly, not through the comment service: a bulk import is
not a live event, so nothing is broadcast, no moderation or flood rule applies, and the event log
is left alone. They pass the same screening as every other door, though: the text through the
comment renderer, the website address through `http_url`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from html import unescape

import sqlalchemy as sa

from app.comments.content import http_url, render
from app.extensions import db
from app.models import Comment, Post, utcnow
from app.wxr.convert import clean_post_html, plain_text
from app.wxr.format import (
    META_BYLINE,
    META_LIKES,
    META_SOURCE_LINE,
    PING_TYPES,
    REPORT_ORDER,
    STATUS_FROM_WP,
    plural,
)
from app.wxr.parse import WxrComment, WxrFile, WxrItem

IMPORTED_POST_STATUSES = {"publish", "future"}  # "future": scheduled, shown when its date comes

# Column limits (see app/models.py).
_LIMITS = {"slug": 200, "title": 300, "byline": 200, "source_line": 300,
           "author": 245, "email": 100, "url": 200, "ip": 45}


def _fit(value: str, limit: str) -> str:
    return value[: _LIMITS[limit]]


@dataclass
class ImportReport:
    """What an import did, and what it left out and why."""

    version: str = ""
    site: str = ""
    posts_created: int = 0
    posts_existing: int = 0
    comments_created: Counter[str] = field(default_factory=Counter)  # by status
    pings_created: int = 0
    comments_existing: int = 0
    orphans: int = 0  # replies whose parent is not in Parley: attached to the post instead
    urls_dropped: Counter[str] = field(default_factory=Counter)  # why → count
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (what, why) → count

    def skip(self, what: str, why: str, count: int = 1) -> None:
        if count:
            self.skipped[(what, why)] += count

    def lines(self) -> list[str]:
        created = sum(self.comments_created.values())
        by_status = ", ".join(
            f"{self.comments_created[s.value]} {s.value}" for s in REPORT_ORDER
            if self.comments_created[s.value]
        )
        if self.pings_created:
            by_status += f"; {self.pings_created} of them pingbacks or trackbacks"
        comments = f"{created} new" + (f" ({by_status})" if by_status else "")
        out = [
            f"Read WXR {self.version}" + (f" from {self.site}" if self.site else "") + ".",
            f"Posts: {self.posts_created} new, {self.posts_existing} already here.",
            f"Comments: {comments}; {self.comments_existing} already here.",
        ]
        if self.orphans:
            out.append(f"Replies to a comment that is not in the file, attached to the post: "
                       f"{self.orphans}.")
        if self.urls_dropped:
            why = ", ".join(f"{count} {reason}" for reason, count in sorted(self.urls_dropped.items()))
            out.append(f"Commenters' website addresses dropped (the comments are kept): {why}.")
        if self.skipped:
            out.append("Skipped:")
            for (what, why), count in sorted(self.skipped.items()):
                out.append(f"  {count} {plural(what, count)}: {why}")
        else:
            out.append("Skipped: nothing.")
        return out


@dataclass
class _Known:
    """A post's comments already stored, found by WordPress id or by (author, date).

    Each stored comment answers for one comment of the file at most (it is "claimed"), so two
    comments by one author in the same second stay two.
    """

    by_wp_id: dict[int, tuple[int, datetime]] = field(default_factory=dict)
    by_author_date: dict[tuple[str, datetime], list[int]] = field(default_factory=dict)
    claimed: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, post_id: int) -> _Known:
        known = cls()
        rows = db.session.execute(
            sa.select(Comment.id, Comment.wp_id, Comment.author_name, Comment.created_at)
            .where(Comment.post_id == post_id).order_by(Comment.id)
        )
        for comment_id, wp_id, author, created in rows:
            known.add(comment_id, wp_id, author, created)
        return known

    def add(self, comment_id: int, wp_id: int | None, author: str, created: datetime,
            *, claimed: bool = False) -> None:
        created = created.replace(microsecond=0)  # WXR dates are to the second
        if wp_id is not None:
            self.by_wp_id.setdefault(wp_id, (comment_id, created))
        self.by_author_date.setdefault((author, created), []).append(comment_id)
        if claimed:
            self.claimed.add(comment_id)

    def find(self, wp_id: int, author: str, created: datetime) -> int | None:
        """The stored comment that is this one, claimed for it; None if it is new."""
        # The id first; but an id alone could be another comment's (the same number in another
        # export, or Parley's own id in a Parley export), so the date must agree too. Then
        # WordPress's own test: same author, same date.
        created = created.replace(microsecond=0)
        hit = self.by_wp_id.get(wp_id)
        candidates = [hit[0]] if hit is not None and hit[1] == created else []
        candidates += self.by_author_date.get((author, created), [])
        for comment_id in candidates:
            if comment_id not in self.claimed:
                self.claimed.add(comment_id)
                return comment_id
        return None


def import_wxr(wxr: WxrFile, *, skip_pings: bool = False,
               progress: Callable[[list[WxrItem]], Iterable[WxrItem]] = iter) -> ImportReport:
    """Stage *wxr*'s published posts and their comments that are not here yet, and flush.

    Nothing is committed: the caller commits once when this returns, or rolls back if it raises,
    so an import is all or nothing and can be one step of a larger change.

    :param progress: wraps the list of items (a progress bar); must yield every item.
    """
    report = ImportReport(version=wxr.version, site=wxr.site)
    for item in progress(wxr.items):
        _import_item(item, wxr.authors, report, skip_pings)
    db.session.flush()
    return report


def _import_item(item: WxrItem, authors: dict[str, str], report: ImportReport,
                 skip_pings: bool) -> None:
    report.skip("comment", "it has no usable wp:comment_id", item.bad_comments)
    if item.post_type != "post":
        why = {
            "page": "Parley serves posts, not pages",
            "attachment": "media files are not imported (their URLs in post HTML still work)",
        }.get(item.post_type, f"post type “{item.post_type}” is not imported")
        report.skip(item.post_type, why)
        report.skip("comment", f"on a {item.post_type}, which is not imported", len(item.comments))
        return
    problem = None
    if item.status not in IMPORTED_POST_STATUSES:
        problem = f"status “{item.status}”: only published and scheduled posts are imported"
    elif not item.slug:
        problem = "it has no slug (wp:post_name)"
    elif item.date is None:
        problem = "it has no date"
    if problem:
        report.skip("post", problem)
        report.skip("comment", "on a post that is not imported", len(item.comments))
        return

    slug = _fit(item.slug, "slug")
    post = db.session.scalar(sa.select(Post).where(Post.slug == slug))
    if post is None:
        post = _new_post(item, slug, authors)
        db.session.add(post)
        db.session.flush()
        report.posts_created += 1
    else:
        report.posts_existing += 1
    _import_comments(post, item.comments, report, skip_pings)


def _new_post(item: WxrItem, slug: str, authors: dict[str, str]) -> Post:
    assert item.date is not None
    byline = item.meta.get(META_BYLINE)
    if byline is None:
        name = authors.get(item.creator) or item.creator
        byline = f"By {name}" if name else ""
    try:
        likes = max(0, int(item.meta.get(META_LIKES, "0")))
    except ValueError:
        likes = 0
    return Post(
        slug=slug,
        title=_fit(plain_text(item.title), "title"),
        published_at=item.date,
        byline=_fit(plain_text(byline), "byline"),
        standfirst=plain_text(item.excerpt),
        body=clean_post_html(item.content),
        source_line=_fit(plain_text(item.meta.get(META_SOURCE_LINE, "")), "source_line"),
        like_count=likes,
        comments_open=item.comment_status != "closed",
        created_at=item.date,
        updated_at=item.date,
    )


def _website(url: str, report: ImportReport) -> str:
    """The commenter's website as every door stores it: http(s) only, whole or not at all."""
    screened = http_url(url)
    if url and not screened:
        report.urls_dropped["not http or https"] += 1
    elif len(screened) > _LIMITS["url"]:  # cut short, it would point somewhere else
        report.urls_dropped[f"longer than {_LIMITS['url']} characters"] += 1
        return ""
    return screened


def _import_comments(post: Post, comments: list[WxrComment], report: ImportReport,
                     skip_pings: bool) -> None:
    known = _Known.load(post.id)
    ids: dict[int, int] = {}  # WordPress id → Parley id, for this post's threading
    new: list[tuple[Comment, int]] = []  # (comment, its WordPress parent id)
    for c in comments:
        comment_type = c.type.lower()
        if comment_type in {"", "comment"}:
            comment_type = ""
        elif comment_type not in PING_TYPES:
            report.skip("comment", f"type “{c.type}” is not imported")
            continue
        elif skip_pings:
            report.skip(comment_type, "--skip-pings")
            continue
        status = STATUS_FROM_WP.get(c.approved.lower())
        if status is None:
            report.skip("comment", f"unknown status “{c.approved}”")
            continue
        if c.date is None:
            report.skip("comment", "it has no date")
            continue
        # WordPress keeps an author's name as HTML-escaped text ("Blog &raquo; Post" for pings).
        author = _fit(unescape(c.author), "author")
        existing = known.find(c.wp_id, author, c.date)
        if existing is not None:
            ids[c.wp_id] = existing
            report.comments_existing += 1
            continue
        comment = Comment(
            post_id=post.id,
            author_name=author,
            author_email=_fit(c.email, "email"),
            author_url=_website(c.url, report),
            content=c.content,
            content_html=render(c.content),
            status=status,
            ip=_fit(c.ip, "ip"),
            user_agent="",
            created_at=c.date,
            updated_at=c.date,
            wp_id=c.wp_id,
            comment_type=comment_type or None,
        )
        db.session.add(comment)
        new.append((comment, c.parent))
        report.comments_created[status.value] += 1
        if comment_type:
            report.pings_created += 1
    db.session.flush()
    if new:
        # No live event marks this change (a bulk import is not one), so mark the post changed:
        # cached copies of its page are keyed on its updated_at (app/blog/cache.py).
        post.updated_at = utcnow()
    for comment, _ in new:
        assert comment.wp_id is not None
        ids.setdefault(comment.wp_id, comment.id)
        known.add(comment.id, comment.wp_id, comment.author_name, comment.created_at,
                  claimed=True)
    # Parents may come after their replies in the file: link them once every id is known.
    for comment, parent in new:
        if not parent:
            continue
        if parent in ids and ids[parent] != comment.id:
            comment.parent_id = ids[parent]
        else:
            report.orphans += 1
    db.session.flush()
