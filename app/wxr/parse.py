"""Reading a WXR file, safely, into plain records; nothing here touches the database."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import defusedxml
import defusedxml.ElementTree as SafeET

from app.wxr.format import EXCERPT, NAMESPACES, WP

# Every WXR version: 1.0 (WordPress ≤ 3.0 and WordPress.com of that time), 1.1 (3.1), 1.2 (3.4+).
_WXR_NAMESPACE = re.compile(r"^https?://wordpress\.org/export/(1\.\d+)/(excerpt/)?$")
_NO_DATE = {"", "0000-00-00 00:00:00"}
_MAX_ID = 2**63 - 1  # Comment.wp_id is a BIGINT


class WXRError(Exception):
    """A file that cannot be imported; the message says why, for the operator."""


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
    """A WordPress id: a whole number a BIGINT column holds, else None."""
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if 0 <= value <= _MAX_ID else None


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
