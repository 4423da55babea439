"""WordPress eXtended RSS (WXR): import a WordPress export, and export Parley as one.

`flask wxr import FILE` reads the file WordPress (Tools → Export) and WordPress.com write, in
every WXR version they have written (the `http://wordpress.org/export/1.0/` … `1.2/` namespaces),
and imports its published posts and their comments — threading, authors, dates, statuses and,
unless told otherwise, pingbacks and trackbacks. Importing the same file again changes nothing:
a post is found again by its slug, a comment by its original WordPress id (or, as WordPress's own
importer does, by its author and date). Comments are written to the session directly, not through
the comment service: a bulk import is not a live event, so nothing is broadcast, no moderation or
flood rule applies, and the event log is left alone.

`flask wxr export FILE` writes WXR 1.2, which WordPress's importer accepts, with every post and
every comment in every state. Parley's own post fields (byline, source line, likes) travel in
`_parley_*` post meta, so an export imported into an empty Parley gives back the same blog.

WXR files are untrusted: they are parsed with defusedxml and refused if they carry a DTD (which
WordPress never writes, and entity-expansion and external-entity attacks need); comment text is
rendered by the comment sanitiser; post HTML is cleaned with nh3.
"""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import unescape
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import click
import defusedxml
import defusedxml.ElementTree as SafeET
import nh3
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup

from app.blog.feeds import add, rfc822, serialise
from app.comments.content import render
from app.extensions import db
from app.models import Comment, CommentStatus, Post, utcnow
from app.urls import post_url

WP = "http://wordpress.org/export/1.2/"
EXCERPT = "http://wordpress.org/export/1.2/excerpt/"
NAMESPACES = {
    "excerpt": EXCERPT,
    "content": "http://purl.org/rss/1.0/modules/content/",
    "wfw": "http://wellformedweb.org/CommentAPI/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "wp": WP,
}
# Every WXR version: 1.0 (WordPress ≤ 3.0 and WordPress.com of that time), 1.1 (3.1), 1.2 (3.4+).
_WXR_NAMESPACE = re.compile(r"^https?://wordpress\.org/export/(1\.\d+)/(excerpt/)?$")
_NO_DATE = {"", "0000-00-00 00:00:00"}

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
# How summaries list the states: as the moderation queues, approved first.
_REPORT_ORDER = (CommentStatus.APPROVED, CommentStatus.PENDING, CommentStatus.SPAM, CommentStatus.TRASH)
STATUS_TO_WP = {
    CommentStatus.APPROVED: "1",
    CommentStatus.PENDING: "0",
    CommentStatus.SPAM: "spam",
    CommentStatus.TRASH: "trash",
}
PING_TYPES = {"pingback", "trackback"}
IMPORTED_POST_STATUSES = {"publish", "future"}  # "future": scheduled, shown when its date comes

# The HTML a post body may keep: ammonia's defaults (the usual prose, lists, tables, images,
# figures) plus `class`, which WordPress content leans on (alignleft, wp-image-12, wp-block-…).
# No style, no script, no iframe, no id (ids could clobber the page's own elements).
POST_TAGS = set(nh3.ALLOWED_TAGS)
POST_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()} | {
    "*": {"class", "title", "lang", "dir"},
}
_BLOCK_START = re.compile(
    r"^\s*<(?:p|div|h[1-6]|ul|ol|li|dl|blockquote|pre|table|figure|hr|address|section|article"
    r"|aside|header|footer|nav|details|!--)[\s/>]",
    re.IGNORECASE,
)

# Parley's own post fields, carried in post meta (leading underscore: hidden in WordPress).
META_BYLINE = "_parley_byline"
META_SOURCE_LINE = "_parley_source_line"
META_LIKES = "_parley_like_count"

# Column limits (see app/models.py).
_LIMITS = {"slug": 200, "title": 300, "byline": 200, "source_line": 300,
           "author": 245, "email": 100, "url": 200, "ip": 45}


class WXRError(Exception):
    """A file that cannot be imported; the message says why, for the operator."""


# --- reading a WXR file --------------------------------------------------------------------------

@dataclass
class WxrComment:
    wp_id: int
    author: str
    email: str
    url: str
    ip: str
    date: datetime | None
    content: str
    approved: str
    type: str
    parent: int


@dataclass
class WxrItem:
    wp_id: int | None
    post_type: str
    status: str
    slug: str
    title: str
    content: str
    excerpt: str
    creator: str
    date: datetime | None
    comment_status: str
    meta: dict[str, str]
    comments: list[WxrComment]
    bad_comments: int = 0  # comments without a usable id


@dataclass
class WxrFile:
    version: str
    site: str
    authors: dict[str, str]  # login → display name
    items: list[WxrItem]


def _child_text(element: ET.Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "") if child is not None else ""


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _wp(local: str) -> str:
    return f"{{{WP}}}{local}"


def _ns(prefix: str, local: str) -> str:
    return f"{{{NAMESPACES[prefix]}}}{local}"


def _date(gmt: str, local: str, timezone: ZoneInfo) -> datetime | None:
    """WordPress's GMT date if it has one, else its local date read in the blog's timezone."""
    for text, zone in ((gmt.strip(), UTC), (local.strip(), timezone)):
        if text in _NO_DATE:
            continue
        try:
            value = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
        return value.replace(tzinfo=zone).astimezone(UTC)
    return None


def _normalise_namespaces(root: ET.Element) -> list[str]:
    """Rewrite every WXR 1.x namespace to 1.2's, so one reader serves all; return the versions."""
    versions: set[str] = set()
    for element in root.iter():
        if not isinstance(element.tag, str) or not element.tag.startswith("{"):
            continue
        uri, _, local = element.tag[1:].partition("}")
        match = _WXR_NAMESPACE.match(uri)
        if match:
            versions.add(match.group(1))
            element.tag = f"{{{EXCERPT if match.group(2) else WP}}}{local}"
    return sorted(versions)


def parse(source: str | os.PathLike[str] | IO[bytes], timezone: ZoneInfo) -> WxrFile:
    """Read a WXR file safely; raise WXRError if it is not well-formed XML or not a WXR file.

    :param timezone: the zone WordPress's local dates are read in when a GMT date is missing.
    """
    try:
        tree = SafeET.parse(source, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise WXRError(
            f"refused: the file declares a DTD or entities ({type(exc).__name__}). WordPress never "
            "writes them, and they are how entity-expansion (“billion laughs”) and external-entity "
            "attacks work."
        ) from None
    except ET.ParseError as exc:
        line, column = exc.position
        reason = re.sub(r": line \d+, column \d+$", "", str(exc))
        raise WXRError(f"not well-formed XML (line {line}, column {column + 1}: {reason}).") from None
    root = tree.getroot()
    versions = _normalise_namespaces(root)
    channel = root.find("channel")
    if root.tag != "rss" or channel is None or not versions:
        raise WXRError(
            "not a WordPress export (WXR) file: expected <rss><channel> with WordPress elements "
            "in the http://wordpress.org/export/1.0/ … 1.2/ namespace."
        )
    version = _child_text(channel, _wp("wxr_version")).strip() or versions[-1]
    authors = {
        _child_text(a, _wp("author_login")).strip():
            _child_text(a, _wp("author_display_name")).strip()
        for a in channel.findall(_wp("author"))
    }
    site = (_child_text(channel, _wp("base_blog_url")) or _child_text(channel, "link")).strip()
    items = [_read_item(item, timezone) for item in channel.findall("item")]
    return WxrFile(version, site, {k: v for k, v in authors.items() if k}, items)


def _read_item(item: ET.Element, timezone: ZoneInfo) -> WxrItem:
    date = _date(_child_text(item, _wp("post_date_gmt")), _child_text(item, _wp("post_date")),
                 timezone)
    if date is None and _child_text(item, "pubDate").strip():
        try:
            date = parsedate_to_datetime(_child_text(item, "pubDate")).astimezone(UTC)
        except (TypeError, ValueError):
            date = None
    meta = {
        _child_text(m, _wp("meta_key")): _child_text(m, _wp("meta_value"))
        for m in item.findall(_wp("postmeta"))
    }
    comments: list[WxrComment] = []
    bad = 0
    for c in item.findall(_wp("comment")):
        wp_id = _int(_child_text(c, _wp("comment_id")))
        if wp_id is None:
            bad += 1
            continue
        comments.append(WxrComment(
            wp_id=wp_id,
            author=_child_text(c, _wp("comment_author")).strip(),
            email=_child_text(c, _wp("comment_author_email")).strip(),
            url=_child_text(c, _wp("comment_author_url")).strip(),
            ip=_child_text(c, _wp("comment_author_IP")).strip(),
            date=_date(_child_text(c, _wp("comment_date_gmt")), _child_text(c, _wp("comment_date")),
                       timezone),
            content=_child_text(c, _wp("comment_content")),
            approved=_child_text(c, _wp("comment_approved")).strip(),
            type=_child_text(c, _wp("comment_type")).strip(),
            parent=_int(_child_text(c, _wp("comment_parent"))) or 0,
        ))
    return WxrItem(
        wp_id=_int(_child_text(item, _wp("post_id"))),
        post_type=_child_text(item, _wp("post_type")).strip() or "post",
        status=_child_text(item, _wp("status")).strip() or "publish",
        slug=unquote(_child_text(item, _wp("post_name")).strip()),
        title=_child_text(item, "title"),
        content=_child_text(item, _ns("content", "encoded")),
        excerpt=_child_text(item, _ns("excerpt", "encoded")),
        creator=_child_text(item, _ns("dc", "creator")).strip(),
        date=date,
        comment_status=_child_text(item, _wp("comment_status")).strip() or "open",
        meta=meta,
        comments=comments,
        bad_comments=bad,
    )


# --- turning WordPress content into Parley's -------------------------------------------------------

def post_autop(content: str) -> str:
    """Paragraphs for classic-editor content, which WordPress stores without them (wpautop).

    Content that already has paragraphs (the block editor's, or Parley's own export) is left alone.
    """
    if re.search(r"<p[\s>]|<!-- wp:", content, re.IGNORECASE):
        return content
    chunks = re.split(r"\n\s*\n", content.replace("\r\n", "\n").replace("\r", "\n").strip())
    out = []
    for chunk in chunks:
        chunk = chunk.strip()
        if not chunk:
            continue
        if _BLOCK_START.match(chunk):
            out.append(chunk)
        else:
            out.append("<p>" + "<br />\n".join(line.strip() for line in chunk.split("\n")) + "</p>")
    return "\n".join(out)


def clean_post_html(content: str) -> str:
    """A post body from an import file: author HTML, but sanitised, since the file is untrusted."""
    html = nh3.clean(post_autop(content), tags=POST_TAGS, attributes=POST_ATTRIBUTES)
    return html.replace("<p></p>", "").strip()  # paragraphs that held only removed markup


def plain_text(html: str) -> str:
    """Text from a WordPress field that may hold markup or entities ("Tea &amp; chai" → "Tea & chai")."""
    return unescape(nh3.clean(html, tags=set())).strip()


def _fit(value: str, limit: str) -> str:
    return value[: _LIMITS[limit]]


# --- importing -------------------------------------------------------------------------------------

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
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (what, why) → count

    def skip(self, what: str, why: str, count: int = 1) -> None:
        if count:
            self.skipped[(what, why)] += count

    def lines(self) -> list[str]:
        created = sum(self.comments_created.values())
        by_status = ", ".join(
            f"{self.comments_created[s.value]} {s.value}" for s in _REPORT_ORDER
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
        if self.skipped:
            out.append("Skipped:")
            for (what, why), count in sorted(self.skipped.items()):
                out.append(f"  {count} {_plural(what, count)}: {why}")
        else:
            out.append("Skipped: nothing.")
        return out


def _plural(word: str, count: int) -> str:
    return word if count == 1 else f"{word}s"


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
    """Store *wxr*'s published posts and their comments that are not here yet; commit once.

    :param progress: wraps the list of items (a progress bar); must yield every item.
    """
    report = ImportReport(version=wxr.version, site=wxr.site)
    try:
        for item in progress(wxr.items):
            _import_item(item, wxr.authors, report, skip_pings)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return report


def _import_item(item: WxrItem, authors: dict[str, str], report: ImportReport,
                 skip_pings: bool) -> None:
    report.skip("comment", "it has no wp:comment_id", item.bad_comments)
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
            author_url=_fit(c.url, "url"),
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


# --- exporting -------------------------------------------------------------------------------------

@dataclass
class ExportReport:
    posts: int = 0
    comments: Counter[str] = field(default_factory=Counter)  # by status

    def lines(self) -> list[str]:
        total = sum(self.comments.values())
        by_status = ", ".join(f"{self.comments[s.value]} {s.value}" for s in _REPORT_ORDER
                              if self.comments[s.value])
        return [f"Exported {self.posts} {_plural('post', self.posts)} and {total} "
                f"{_plural('comment', total)}" + (f" ({by_status})" if by_status else "") + "."]


def _wp_date(value: datetime, zone: ZoneInfo | None = None) -> str:
    return value.astimezone(zone or UTC).strftime("%Y-%m-%d %H:%M:%S")


def _login(name: str, number: int) -> str:
    """A WordPress user_login for a byline name: lowercase ASCII letters, digits and hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or f"author-{number}"


def _post_name(slug: str) -> str:
    """WordPress keeps non-ASCII slugs percent-encoded, in lowercase."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(slug, safe=""))


@contextmanager
def _site_urls(app: Flask) -> Iterator[str]:
    """A request context on SITE_URL (or localhost), so permalinks come out absolute."""
    base = app.config.get("SITE_URL") or "http://localhost"
    with app.test_request_context("/", base_url=base):
        yield base.rstrip("/")


def export_wxr(out: IO[bytes], *,
               progress: Callable[[list[Post]], Iterable[Post]] = iter) -> ExportReport:
    """Write every post and every comment (all states) to *out* as WXR 1.2."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    zone = ZoneInfo(app.config["BLOG_TIMEZONE"])
    report = ExportReport()
    posts = list(db.session.scalars(sa.select(Post).order_by(Post.published_at, Post.id)))
    with _site_urls(app) as base:
        rss = ET.Element("rss", {"version": "2.0"})
        channel = add(rss, "channel", namespaces=NAMESPACES)
        for tag, text in (
            ("title", app.config["BLOG_TITLE"]),
            ("link", base),
            ("description", app.config["BLOG_TAGLINE"]),
            ("pubDate", rfc822(utcnow())),
            ("language", "en-US"),
            ("wp:wxr_version", "1.2"),
            ("wp:base_site_url", base),
            ("wp:base_blog_url", base),
        ):
            add(channel, tag, text, namespaces=NAMESPACES)
        names = {p.byline.removeprefix("By ").strip() for p in posts} - {""}
        logins: dict[str, str] = {}
        for number, name in enumerate(sorted(names), start=1):
            login = _login(name, number)
            if login in logins.values():
                login = f"{login}-{number}"
            logins[name] = login
            author = add(channel, "wp:author", namespaces=NAMESPACES)
            add(author, "wp:author_id", number, namespaces=NAMESPACES)
            add(author, "wp:author_login", login, namespaces=NAMESPACES)
            add(author, "wp:author_email", "", namespaces=NAMESPACES)
            add(author, "wp:author_display_name", name, namespaces=NAMESPACES)
            add(author, "wp:author_first_name", "", namespaces=NAMESPACES)
            add(author, "wp:author_last_name", "", namespaces=NAMESPACES)
        add(channel, "generator", "Parley", namespaces=NAMESPACES)
        for post in progress(posts):
            _export_post(channel, post, post_url(post, _external=True), base, zone,
                         logins.get(post.byline.removeprefix("By ").strip(), ""), report)
        data = serialise(rss, NAMESPACES)
    out.write(data)
    return report


def _export_post(channel: ET.Element, post: Post, permalink: str, base: str, zone: ZoneInfo,
                 login: str, report: ExportReport) -> None:
    def sub(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
        return add(parent, tag, text, namespaces=NAMESPACES)

    item = sub(channel, "item")
    sub(item, "title", post.title)
    sub(item, "link", permalink)
    sub(item, "pubDate", rfc822(post.published_at))
    sub(item, "dc:creator", login)
    add(item, "guid", f"{base}/?p={post.id}", namespaces=NAMESPACES, isPermaLink="false")
    sub(item, "description", "")
    sub(item, "content:encoded", post.body)
    sub(item, "excerpt:encoded", post.standfirst)
    sub(item, "wp:post_id", post.id)
    sub(item, "wp:post_date", _wp_date(post.published_at, zone))
    sub(item, "wp:post_date_gmt", _wp_date(post.published_at))
    sub(item, "wp:post_modified", _wp_date(post.updated_at, zone))
    sub(item, "wp:post_modified_gmt", _wp_date(post.updated_at))
    sub(item, "wp:comment_status", "open" if post.comments_open else "closed")
    sub(item, "wp:ping_status", "open")
    sub(item, "wp:post_name", _post_name(post.slug))
    sub(item, "wp:status", "publish" if post.published_at <= utcnow() else "future")
    sub(item, "wp:post_parent", 0)
    sub(item, "wp:menu_order", 0)
    sub(item, "wp:post_type", "post")
    sub(item, "wp:post_password", "")
    sub(item, "wp:is_sticky", 0)
    for key, value in ((META_BYLINE, post.byline), (META_SOURCE_LINE, post.source_line),
                       (META_LIKES, post.like_count)):
        meta = sub(item, "wp:postmeta")
        sub(meta, "wp:meta_key", key)
        sub(meta, "wp:meta_value", value)
    report.posts += 1
    comments = db.session.scalars(
        sa.select(Comment).where(Comment.post_id == post.id).order_by(Comment.id)
    )
    for comment in comments:
        element = sub(item, "wp:comment")
        sub(element, "wp:comment_id", comment.id)
        sub(element, "wp:comment_author", comment.author_name)
        sub(element, "wp:comment_author_email", comment.author_email)
        sub(element, "wp:comment_author_url", comment.author_url)
        sub(element, "wp:comment_author_IP", comment.ip)
        sub(element, "wp:comment_date", _wp_date(comment.created_at, zone))
        sub(element, "wp:comment_date_gmt", _wp_date(comment.created_at))
        sub(element, "wp:comment_content", comment.content)
        sub(element, "wp:comment_approved", STATUS_TO_WP[comment.status])
        sub(element, "wp:comment_type", comment.comment_type or "comment")
        sub(element, "wp:comment_parent", comment.parent_id or 0)
        sub(element, "wp:comment_user_id", 0)
        report.comments[comment.status.value] += 1


# --- the command line ------------------------------------------------------------------------------

wxr_cli = AppGroup("wxr", help="Import or export a WordPress export (WXR) file.")


def _stderr() -> IO[str]:
    """Where progress bars go: standard error, so that `export -` keeps stdout for the file."""
    return sys.stderr  # looked up at call time, so click's test runner can capture it


@wxr_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-pings", is_flag=True,
              help="Leave out pingbacks and trackbacks (they are kept, as such, by default).")
def import_command(file: Path, skip_pings: bool) -> None:
    """Import FILE's published posts and their comments; running it twice changes nothing."""
    try:
        wxr = parse(file, ZoneInfo(current_app.config["BLOG_TIMEZONE"]))
    except WXRError as exc:
        raise click.ClickException(f"{file} cannot be imported: {exc} Nothing was changed.") from None

    def progress(items: list[WxrItem]) -> Iterator[WxrItem]:
        with click.progressbar(items, label="Importing", file=_stderr(),
                               item_show_func=lambda i: i.title[:40] if i else None) as bar:
            yield from bar

    report = import_wxr(wxr, skip_pings=skip_pings, progress=progress)
    for line in report.lines():
        click.echo(line)


@wxr_cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, allow_dash=True))
def export_command(file: str) -> None:
    """Write every post and comment to FILE as WXR 1.2 ("-" for standard output)."""
    def progress(posts: list[Post]) -> Iterator[Post]:
        with click.progressbar(posts, label="Exporting", file=_stderr()) as bar:
            yield from bar

    to_stdout = file == "-"
    # atomic: the file appears whole or not at all, never half-written over an older export
    with click.open_file(file, "wb", atomic=not to_stdout) as out:
        report = export_wxr(out, progress=progress)
    for line in report.lines():
        click.echo(line, err=to_stdout)


def register(app: Flask) -> None:
    app.cli.add_command(wxr_cli)
