"""Turn what a commenter typed into safe HTML, as WordPress does for comments.

The tags WordPress allows in comments pass through (with their allowed attributes); every other
tag is shown as typed, escaped. Paragraphs and line breaks follow WordPress's autop, bare URLs
become links, and nh3 (the ammonia sanitiser) has the last word, so nothing else reaches a page.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

import nh3

ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "acronym": {"title"},
    "b": set(),
    "blockquote": {"cite"},
    "cite": set(),
    "code": set(),
    "del": {"datetime"},
    "em": set(),
    "i": set(),
    "q": {"cite"},
    "s": set(),
    "strike": set(),
    "strong": set(),
}
# autop's own output
_OUTPUT_TAGS = set(ALLOWED_ATTRIBUTES) | {"p", "br"}
_URL_SCHEMES = {"http", "https", "mailto"}
# A bare URL ends before whitespace or markup; trailing punctuation is the sentence's.
_BARE_URL = re.compile(r"\bhttps?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


class _Escaper(HTMLParser):
    """Keep allowed tags, escape all other markup, link bare URLs outside links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.in_link = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        allowed = ALLOWED_ATTRIBUTES.get(tag)
        if allowed is None:
            self.out.append(escape(self.get_starttag_text() or ""))
            return
        kept = "".join(
            f' {name}="{escape(value or "")}"' for name, value in attrs if name in allowed
        )
        self.out.append(f"<{tag}{kept}>")
        if tag == "a":
            self.in_link += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ALLOWED_ATTRIBUTES:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)
        else:
            self.out.append(escape(self.get_starttag_text() or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ALLOWED_ATTRIBUTES:
            self.out.append(f"</{tag}>")
            if tag == "a" and self.in_link:
                self.in_link -= 1
        else:
            self.out.append(escape(f"</{tag}>"))

    def handle_data(self, data: str) -> None:
        if self.in_link:
            self.out.append(escape(data, quote=False))
            return
        pos = 0
        for match in _BARE_URL.finditer(data):
            url = match.group(0).rstrip(_TRAILING)
            start, end = match.start(), match.start() + len(url)
            self.out.append(escape(data[pos:start], quote=False))
            self.out.append(f'<a href="{escape(url)}">{escape(url, quote=False)}</a>')
            pos = end
        self.out.append(escape(data[pos:], quote=False))

    def _escape_raw(self, text: str) -> None:
        self.out.append(escape(text, quote=False))

    def handle_comment(self, data: str) -> None:
        self._escape_raw(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self._escape_raw(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self._escape_raw(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self._escape_raw(f"<![{data}]>")


_HTTP_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def http_url(url: str | None) -> str:
    """*url* when it is an http(s) address a link may point at, else "" (nothing is linked).

    The one check of a stored website address, whichever door it came in by (the form, the API,
    an import, a sign-in profile): `javascript:`, `data:` and the rest are never stored.
    """
    url = (url or "").strip()
    if not url or _CONTROL.search(url) or not _HTTP_URL.match(url):
        return ""
    return url


def autop(text: str) -> str:
    """Blank lines make paragraphs and single newlines make breaks, as WordPress's wpautop."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ""
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n".join(
        "<p>" + "<br />\n".join(line.strip() for line in p.strip().split("\n")) + "</p>"
        for p in paragraphs
    )


def render(text: str) -> str:
    """Return the safe HTML of a comment's text."""
    parser = _Escaper()
    parser.feed(text)
    parser.close()
    html = autop("".join(parser.out))
    clean = nh3.clean(
        html,
        tags=_OUTPUT_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="nofollow ugc",
    )
    # A block quote splits its paragraph; drop the empty halves the parser leaves.
    return clean.replace("<p></p>", "")
