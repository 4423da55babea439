"""WordPress content made Parley's: paragraphs for classic-editor posts, and sanitised HTML."""

from __future__ import annotations

import re
from html import unescape

import nh3

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
