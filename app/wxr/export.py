"""Writing Parley as WXR 1.2, the way WordPress's own exporter writes it.

WordPress's importer reads a WXR file with one of four parsers (SimpleXML, the `xml` extension,
regular expressions, and the XML processor of its bundled toolkit), and only WordPress's own
layout is read alike by all four. So the file is written as `export_wp()` writes it
(wp-admin/includes/export.php), line by line, not by an XML serialiser:

- text goes in CDATA sections, exactly where `wxr_cdata()` puts it, a `]]>` inside it split
  across two sections as `wxr_cdata()` splits it: the regex parser takes what is between the tags
  and unescapes only CDATA, so escaped HTML would reach WordPress still escaped; and the XML
  processor leaves an entity in a text's last five characters undecoded (`</b&gt;`);
- numbers stay bare, and `0` is written out (`<wp:comment_parent>0</wp:comment_parent>`);
- no element is self-closing (`<description></description>`, `<![CDATA[]]>`): the XML processor
  drops every `<x/>` and the keys it should have held;
- each `<wp:author>` is one line, and every element of an item starts a line of its own: the
  regex parser reads authors a line at a time and items between their `<item>` lines.

One change from WordPress, on purpose: the commenter's website is in CDATA too. WordPress writes
it bare and unescaped, so an address with `&` in it makes its own file ill-formed.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import IO
from urllib.parse import quote
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask, current_app

from app.blog.feeds import rfc822, xml_text
from app.extensions import db
from app.models import Comment, Post, utcnow
from app.urls import post_url
from app.wxr.format import (
    META_BYLINE,
    META_LIKES,
    META_SOURCE_LINE,
    NAMESPACES,
    REPORT_ORDER,
    STATUS_TO_WP,
    plural,
)


@dataclass
class ExportReport:
    posts: int = 0
    comments: Counter[str] = field(default_factory=Counter)  # by status

    def lines(self) -> list[str]:
        total = sum(self.comments.values())
        by_status = ", ".join(f"{self.comments[s.value]} {s.value}" for s in REPORT_ORDER
                              if self.comments[s.value])
        return [f"Exported {self.posts} {plural('post', self.posts)} and {total} "
                f"{plural('comment', total)}" + (f" ({by_status})" if by_status else "") + "."]


def cdata(value: object) -> str:
    """`wxr_cdata()`: *value* in a CDATA section, each `]]>` in it split across two sections."""
    return "<![CDATA[" + xml_text(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _text(tag: str, value: object) -> str:
    """`<tag>value</tag>`, escaped: for numbers, dates, URLs WordPress writes bare."""
    return f"<{tag}>{escape(xml_text(value), quote=False)}</{tag}>"


def _cdata(tag: str, value: object) -> str:
    return f"<{tag}>{cdata(value)}</{tag}>"


def _wp_date(value: datetime, zone: ZoneInfo | None = None) -> str:
    return value.astimezone(zone or UTC).strftime("%Y-%m-%d %H:%M:%S")


def _login(name: str, number: int) -> str:
    """A WordPress user_login for a byline name: lowercase ASCII letters, digits and hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or f"author-{number}"


def _author_name(post: Post) -> str:
    """The byline's name, on one line (a `<wp:author>` must be)."""
    return " ".join(post.byline.removeprefix("By ").split())


def _post_name(slug: str) -> str:
    """WordPress keeps non-ASCII slugs percent-encoded, in lowercase."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(slug, safe=""))


@contextmanager
def _site_urls(app: Flask) -> Iterator[str]:
    """A request context on SITE_URL (or localhost), so permalinks come out absolute."""
    base = app.config["SITE_URL"] or "http://localhost"
    with app.test_request_context("/", base_url=base):
        yield base.rstrip("/")


def export_wxr(out: IO[bytes], *,
               progress: Callable[[list[Post]], Iterable[Post]] = iter) -> ExportReport:
    """Write every post and every comment (all states) to *out* as WXR 1.2."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    zone = ZoneInfo(app.config["BLOG_TIMEZONE"])
    report = ExportReport()
    posts = list(db.session.scalars(sa.select(Post).order_by(Post.published_at, Post.id)))

    def write(*lines: str) -> None:
        out.write("".join(f"{line}\n" for line in lines).encode("utf-8"))

    with _site_urls(app) as base:
        write('<?xml version="1.0" encoding="UTF-8"?>',
              "<!-- A WordPress eXtended RSS (WXR) file: Parley's posts and comments, for "
              "WordPress's importer (Tools: Import: WordPress) or `flask wxr import`. -->",
              '<rss version="2.0"',
              *(f'\txmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items()),
              ">", "", "<channel>",
              "\t" + _text("title", app.config["BLOG_TITLE"]),
              "\t" + _text("link", base),
              "\t" + _text("description", app.config["BLOG_TAGLINE"]),
              "\t" + _text("pubDate", rfc822(utcnow())),
              "\t" + _text("language", "en-US"),
              "\t" + _text("wp:wxr_version", "1.2"),
              "\t" + _text("wp:base_site_url", base),
              "\t" + _text("wp:base_blog_url", base),
              "")
        logins: dict[str, str] = {}
        for number, name in enumerate(sorted({_author_name(p) for p in posts} - {""}), start=1):
            login = _login(name, number)
            if login in logins.values():
                login = f"{login}-{number}"
            logins[name] = login
            write("\t<wp:author>" + _text("wp:author_id", number)
                  + _cdata("wp:author_login", login) + _cdata("wp:author_email", "")
                  + _cdata("wp:author_display_name", name) + _cdata("wp:author_first_name", "")
                  + _cdata("wp:author_last_name", "") + "</wp:author>")
        write("", "\t" + _text("generator", "Parley"), "")
        comment_ids = itertools.count(1)
        for post in progress(posts):
            write(*_item(post, post_url(post, _external=True), base, zone,
                         logins.get(_author_name(post), ""), comment_ids, report))
        write("</channel>", "</rss>")
    return report


def _item(post: Post, permalink: str, base: str, zone: ZoneInfo, login: str,
          comment_ids: Iterator[int], report: ExportReport) -> list[str]:
    """One post and its comments, as the lines of an `<item>`, in WordPress's order.

    Comments are numbered in the file, from *comment_ids*, parents before their replies; Parley's
    own ids are not written (no importer keeps a file's comment ids; WordPress's and Parley's
    find a comment again by its author and date).
    """
    lines = [
        "\t<item>",
        "\t\t" + _cdata("title", post.title),
        "\t\t" + _text("link", permalink),
        "\t\t" + _text("pubDate", rfc822(post.published_at)),
        "\t\t" + _cdata("dc:creator", login),
        f'\t\t<guid isPermaLink="false">{escape(xml_text(f"{base}/?p={post.id}"))}</guid>',
        "\t\t<description></description>",
        "\t\t" + _cdata("content:encoded", post.body),
        "\t\t" + _cdata("excerpt:encoded", post.standfirst),
        "\t\t" + _text("wp:post_id", post.id),
        "\t\t" + _cdata("wp:post_date", _wp_date(post.published_at, zone)),
        "\t\t" + _cdata("wp:post_date_gmt", _wp_date(post.published_at)),
        "\t\t" + _cdata("wp:post_modified", _wp_date(post.updated_at, zone)),
        "\t\t" + _cdata("wp:post_modified_gmt", _wp_date(post.updated_at)),
        "\t\t" + _cdata("wp:comment_status", "open" if post.comments_open else "closed"),
        "\t\t" + _cdata("wp:ping_status", "open"),
        "\t\t" + _cdata("wp:post_name", _post_name(post.slug)),
        "\t\t" + _cdata("wp:status", "publish" if post.published_at <= utcnow() else "future"),
        "\t\t" + _text("wp:post_parent", 0),
        "\t\t" + _text("wp:menu_order", 0),
        "\t\t" + _cdata("wp:post_type", "post"),
        "\t\t" + _cdata("wp:post_password", ""),
        "\t\t" + _text("wp:is_sticky", 0),
    ]
    for key, value in ((META_BYLINE, post.byline), (META_SOURCE_LINE, post.source_line),
                       (META_LIKES, post.like_count)):
        lines += ["\t\t<wp:postmeta>",
                  "\t\t" + _cdata("wp:meta_key", key),
                  "\t\t" + _cdata("wp:meta_value", value),
                  "\t\t</wp:postmeta>"]
    report.posts += 1
    comments = list(db.session.scalars(
        sa.select(Comment).where(Comment.post_id == post.id).order_by(Comment.id)
    ))
    numbers: dict[int, int] = {}  # Parley id → the file's comment_id
    for comment in _parents_first(comments):
        numbers[comment.id] = next(comment_ids)
        lines += [
            "\t\t<wp:comment>",
            "\t\t\t" + _text("wp:comment_id", numbers[comment.id]),
            "\t\t\t" + _cdata("wp:comment_author", comment.author_name),
            "\t\t\t" + _cdata("wp:comment_author_email", comment.author_email),
            "\t\t\t" + _cdata("wp:comment_author_url", comment.author_url),
            "\t\t\t" + _cdata("wp:comment_author_IP", comment.ip),
            "\t\t\t" + _cdata("wp:comment_date", _wp_date(comment.created_at, zone)),
            "\t\t\t" + _cdata("wp:comment_date_gmt", _wp_date(comment.created_at)),
            "\t\t\t" + _cdata("wp:comment_content", comment.content),
            "\t\t\t" + _cdata("wp:comment_approved", STATUS_TO_WP[comment.status]),
            "\t\t\t" + _cdata("wp:comment_type", comment.comment_type or "comment"),
            "\t\t\t" + _text("wp:comment_parent", numbers.get(comment.parent_id or 0, 0)),
            "\t\t\t" + _text("wp:comment_user_id", 0),
            "\t\t</wp:comment>",
        ]
        report.comments[comment.status.value] += 1
    lines.append("\t</item>")
    return lines


def _parents_first(comments: list[Comment]) -> list[Comment]:
    """*comments* in id order, but each reply after the comment it answers.

    A reply can have the lower id: an import stores a file's comments in the file's order, and
    a file may list a reply first. WordPress's importer inserts comments in id order and links a
    reply only to a comment already inserted, so in the file every parent must come first.
    """
    ids = {comment.id for comment in comments}
    waiting: dict[int, list[Comment]] = {}  # parent id → its replies not yet placed
    placed: list[Comment] = []
    done: set[int] = set()

    def place(comment: Comment) -> None:
        placed.append(comment)
        done.add(comment.id)
        for reply in waiting.pop(comment.id, []):
            place(reply)

    for comment in comments:
        parent = comment.parent_id
        if parent is None or parent not in ids or parent in done:
            place(comment)
        else:
            waiting.setdefault(parent, []).append(comment)
    return placed + [c for replies in waiting.values() for c in replies]  # only in a cycle
