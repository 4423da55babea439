"""RSS 2.0 feeds, as WordPress serves them: the posts, the latest comments, one post's comments.

The XML is built with ElementTree, so every title, name and comment is escaped by the serialiser,
never by hand. Only approved comments appear, and only their public fields: no email, no IP.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from html import unescape

import nh3
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, Response, abort, current_app, request, url_for

from app.extensions import db
from app.models import Comment, CommentStatus, Post, utcnow
from app.urls import post_url

bp = Blueprint("feeds", __name__)

# WordPress's "Syndication feeds show the most recent" default (posts_per_rss).
ITEMS_PER_FEED = 10
# WordPress's automatic excerpt: the first 55 words, then " […]".
EXCERPT_WORDS = 55
LANGUAGE = "en-US"

NAMESPACES = {
    "content": "http://purl.org/rss/1.0/modules/content/",
    "wfw": "http://wellformedweb.org/CommentAPI/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "atom": "http://www.w3.org/2005/Atom",
    "sy": "http://purl.org/rss/1.0/modules/syndication/",
    "slash": "http://purl.org/rss/1.0/modules/slash/",
}
# Characters XML 1.0 cannot carry at all, even escaped; a comment could contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --- XML helpers, shared with the WXR export ---------------------------------------------------

def xml_text(value: object) -> str:
    """*value* as text XML can hold: the characters XML 1.0 forbids are dropped."""
    return _NOT_XML.sub("", str(value))


def rfc822(value: datetime) -> str:
    """'Tue, 25 Jan 2011 04:00:00 +0000', the date format of RSS 2.0."""
    return format_datetime(value.astimezone(UTC))


def qname(tag: str, namespaces: dict[str, str]) -> str:
    """'dc:creator' → '{http://purl.org/dc/elements/1.1/}creator'."""
    prefix, _, local = tag.rpartition(":")
    return f"{{{namespaces[prefix]}}}{local}" if prefix else local


def add(parent: ET.Element, tag: str, text: object = None, namespaces: dict[str, str] = NAMESPACES,
        **attrib: str) -> ET.Element:
    """Append a `<tag>` holding *text* (escaped on output) to *parent*."""
    element = ET.SubElement(parent, qname(tag, namespaces), {k: xml_text(v) for k, v in attrib.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def serialise(root: ET.Element, namespaces: dict[str, str]) -> bytes:
    """The document as UTF-8 bytes, with the usual prefixes and an XML declaration."""
    for prefix, uri in namespaces.items():
        ET.register_namespace(prefix, uri)  # idempotent; ElementTree keeps prefixes globally
    ET.indent(root, space="\t")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
        root, encoding="utf-8", xml_declaration=False
    ) + b"\n"


def html_to_text(html: str) -> str:
    """The words of an HTML fragment, tags removed, whitespace collapsed."""
    return " ".join(unescape(nh3.clean(html, tags=set())).split())


# --- the feeds ---------------------------------------------------------------------------------

def _channel(title: str, link: str, self_url: str, description: str,
             last_build: datetime) -> tuple[ET.Element, ET.Element]:
    rss = ET.Element("rss", {"version": "2.0"})
    channel = add(rss, "channel")
    add(channel, "title", title)
    add(channel, "atom:link", href=self_url, rel="self", type="application/rss+xml")
    add(channel, "link", link)
    add(channel, "description", description)
    add(channel, "lastBuildDate", rfc822(last_build))
    add(channel, "language", LANGUAGE)
    add(channel, "sy:updatePeriod", "hourly")
    add(channel, "sy:updateFrequency", "1")
    add(channel, "generator", "Parley")
    return rss, channel


def _respond(rss: ET.Element, last_build: datetime) -> Response:
    response = Response(serialise(rss, NAMESPACES), mimetype="application/rss+xml")
    response.last_modified = last_build
    response.add_etag()
    return response.make_conditional(request)


def _home() -> str:
    return url_for("blog.index", _external=True)


def _guid(post: Post) -> str:
    """WordPress's post guid: '<home>?p=<id>', not a permalink."""
    return f"{_home()}?p={post.id}"


def _author(post: Post) -> str:
    return post.byline.removeprefix("By ").strip()


def excerpt(post: Post) -> str:
    """The post's summary: its standfirst, or its first 55 words, as WordPress's excerpt."""
    if post.standfirst:
        return post.standfirst
    words = html_to_text(post.body).split()
    if len(words) <= EXCERPT_WORDS:
        return " ".join(words)
    return " ".join(words[:EXCERPT_WORDS]) + " […]"


@bp.get("/feed/")
def posts_feed() -> Response:
    """The blog's posts, newest first."""
    posts = list(db.session.scalars(Post.latest().limit(ITEMS_PER_FEED)))
    last_build = max((p.updated_at for p in posts), default=utcnow())
    rss, channel = _channel(
        current_app.config["BLOG_TITLE"], _home(), url_for(".posts_feed", _external=True),
        current_app.config["BLOG_TAGLINE"], last_build,
    )
    for post in posts:
        permalink = post_url(post, _external=True)
        item = add(channel, "item")
        add(item, "title", post.title)
        add(item, "link", permalink)
        add(item, "comments", f"{permalink}#comments")
        add(item, "dc:creator", _author(post))
        add(item, "pubDate", rfc822(post.published_at))
        add(item, "guid", _guid(post), isPermaLink="false")
        add(item, "description", excerpt(post))
        add(item, "content:encoded", post.body)
        add(item, "wfw:commentRss", f"{permalink}feed/")
        add(item, "slash:comments", str(post.approved_count()))
    return _respond(rss, last_build)


def _comment_items(channel: ET.Element, comments: Iterable[Comment], *, single_post: bool) -> None:
    for comment in comments:
        post = comment.post
        item = add(channel, "item")
        # WordPress titles a post's own comment feed "By: X", the site-wide one "Comment on P by X".
        if single_post:
            add(item, "title", f"By: {comment.author_name}")
        else:
            add(item, "title", f"Comment on {post.title} by {comment.author_name}")
        add(item, "link", post_url(post, _external=True) + f"#comment-{comment.id}")
        add(item, "dc:creator", comment.author_name)
        add(item, "pubDate", rfc822(comment.created_at))
        add(item, "guid", f"{_guid(post)}#comment-{comment.id}", isPermaLink="false")
        add(item, "description", html_to_text(comment.content_html))
        add(item, "content:encoded", comment.content_html)


def _latest_comments(*conditions: sa.ColumnElement[bool]) -> list[Comment]:
    return list(db.session.scalars(
        sa.select(Comment)
        .join(Comment.post)
        .options(so.contains_eager(Comment.post))
        .where(Comment.status == CommentStatus.APPROVED, Post.published_at <= utcnow(), *conditions)
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(ITEMS_PER_FEED)
    ))


@bp.get("/comments/feed/")
def comments_feed() -> Response:
    """The latest approved comments on every post, newest first."""
    comments = _latest_comments()
    last_build = max((c.updated_at for c in comments), default=utcnow())
    title = current_app.config["BLOG_TITLE"]
    rss, channel = _channel(
        f"Comments for {title}", _home(), url_for(".comments_feed", _external=True),
        current_app.config["BLOG_TAGLINE"], last_build,
    )
    _comment_items(channel, comments, single_post=False)
    return _respond(rss, last_build)


@bp.get("/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<slug>/feed/")
def post_comments_feed(year: int, month: int, day: int, slug: str) -> Response:
    """One post's latest approved comments, newest first."""
    post = Post.by_permalink(year, month, day, slug)
    if post is None:
        abort(404)
    comments = _latest_comments(Comment.post_id == post.id)
    last_build = max((c.updated_at for c in comments), default=post.updated_at)
    permalink = post_url(post, _external=True)
    rss, channel = _channel(
        f"Comments on: {post.title}", permalink, f"{permalink}feed/",
        current_app.config["BLOG_TAGLINE"], last_build,
    )
    _comment_items(channel, comments, single_post=True)
    return _respond(rss, last_build)
