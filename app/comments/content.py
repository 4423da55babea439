"""Turn what a commenter typed into safe HTML, as WordPress does for comments.

The tags WordPress allows in comments pass through (with their allowed attributes); everything
else is shown as typed, escaped: other tags, and what a browser would hide (a `<script>`'s text,
a comment, a CDATA section), so no character typed is lost. Character references (`&lt;`) are
read as in any HTML. Paragraphs and line breaks follow WordPress's autop, bare URLs become links,
and nh3 (the ammonia sanitiser) has the last word: only http(s) and mailto links, and a quotation's
`cite` only when it is an http(s) address.
"""

from __future__ import annotations

import re
from html import escape, unescape

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
# What HTML itself treats as white space. autop trims only this: a no-break space (`&nbsp;`), an
# ideographic space or any other character is text someone typed, and stays.
_WS = "\t\n\f\r "
_BLANK_LINE = re.compile(rf"\n[{_WS}]*\n")

# What a tag is, as an HTML tokenizer reads one (the WHATWG "tag open" state and the ones after
# it): "<" or "</" and a letter start a tag, whose name and attributes run to the first ">" outside
# a quoted value. A quote opens a value only right after "="; anywhere else it is part of a name.
# So from a tag's start only the end of the text can stop it. The quantifiers are possessive
# (the grammar has one reading): each "<" costs one pass over its tag, never a backtrack, and a
# comment at the length limit renders in milliseconds whatever its markup.
_TAG_START = re.compile(r"</?[A-Za-z]")
_ATTRIBUTE = (
    rf"[{_WS}/]*+"
    rf"([^{_WS}/>][^{_WS}/>=]*+)"  # a name (a leading "=" is part of it, as in a browser)
    rf"(?:[{_WS}]*+=[{_WS}]*+"
    rf"""(?:"([^"]*+)"|'([^']*+)'|([^{_WS}>"'][^{_WS}>]*+)|(?=>))"""
    rf"|(?![{_WS}]*+=))"
)
_TAG = re.compile(rf"<(/?)([A-Za-z][^{_WS}/>]*+)((?:{_ATTRIBUTE})*+)[{_WS}/]*+>")
_ATTRIBUTES = re.compile(_ATTRIBUTE)
_LINE_BREAKS = re.compile(r"[\r\n]+")


def _escape_text(text: str, out: list[str], in_link: bool) -> None:
    """Append *text* (character references read, as in any HTML) escaped, bare URLs linked."""
    text = unescape(text)
    if in_link:
        out.append(escape(text, quote=False))
        return
    pos = 0
    for match in _BARE_URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        start, end = match.start(), match.start() + len(url)
        out.append(escape(text[pos:start], quote=False))
        out.append(f'<a href="{escape(url)}">{escape(url, quote=False)}</a>')
        pos = end
    out.append(escape(text[pos:], quote=False))


def _allowed_tag(end: str, name: str, attributes: str, out: list[str]) -> None:
    """Append an allowed tag, keeping only its allowed attributes (the first of each name)."""
    if end:
        out.append(f"</{name}>")
        return
    allowed, kept = ALLOWED_ATTRIBUTES[name], {}
    for match in _ATTRIBUTES.finditer(attributes):
        attr = match.group(1).lower()
        if attr in allowed and attr not in kept:
            value = next((v for v in match.group(2, 3, 4) if v is not None), "")
            # on one line: autop must never find a line break inside a tag
            kept[attr] = _LINE_BREAKS.sub(" ", unescape(value))
    out.append(f"<{name}" + "".join(f' {a}="{escape(v)}"' for a, v in kept.items()) + ">")


def _escape(text: str) -> str:
    """Keep the allowed tags and escape everything else, as typed; link bare URLs outside links.

    Only a tag can be markup. Everything else that HTML gives a meaning to — the text inside a
    `<script>` or `<style>`, a comment, a CDATA section, a declaration — is shown as the text it
    is, so nothing typed can make the text after it disappear. A tag that is not allowed is shown
    as typed (its character references too). A tag left open at the end (a quote or the ">"
    missing) is not a tag: it and everything after it are shown as typed.
    """
    out: list[str] = []
    in_link = 0
    pos = 0  # where the text not yet written starts
    for start in (m.start() for m in _TAG_START.finditer(text)):
        if start < pos:
            continue  # inside the tag just written
        tag = _TAG.match(text, start)
        if tag is None:
            break  # a tag left open at the end: the rest is text
        _escape_text(text[pos:start], out, bool(in_link))
        end, name, attributes = tag.group(1), tag.group(2).lower(), tag.group(3)
        if name in ALLOWED_ATTRIBUTES:
            _allowed_tag(end, name, attributes, out)
            if name == "a":
                in_link = in_link - 1 if end and in_link else in_link + (not end)
        else:
            out.append(escape(tag.group(0), quote=False))
        pos = tag.end()
    _escape_text(text[pos:], out, bool(in_link))
    return "".join(out)


# http(s)://host…, with no white space or control character anywhere (one fullmatch: a page asks
# it three times per comment, for the website, the profile link and the picture).
_HTTP_URL = re.compile(r"https?://[^\s/?#\x00-\x1f\x7f]+[^\s\x00-\x1f\x7f]*", re.IGNORECASE)


def http_url(url: str | None) -> str:
    """*url* when it is an http(s) address a link may point at, else "" (nothing is linked).

    The one check of a stored website address, whichever door it came in by (the form, the API,
    an import, a sign-in profile): `javascript:`, `data:` and the rest are never stored.
    """
    if not url:
        return ""
    url = url.strip()
    return url if _HTTP_URL.fullmatch(url) else ""


def autop(text: str) -> str:
    """Blank lines make paragraphs and single newlines make breaks, as WordPress's wpautop."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip(_WS)
    if not text:
        return ""
    paragraphs = _BLANK_LINE.split(text)
    return "\n".join(
        "<p>" + "<br />\n".join(line.strip(_WS) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def _checked_cite(tag: str, attribute: str, value: str) -> str | None:
    """nh3 checks the scheme of `href` only: a quotation's `cite` keeps an http(s) address or
    goes (a `javascript:` cite is a link in every browser extension and reader that follows it)."""
    if attribute == "cite":
        return http_url(value) or None
    return value


def render(text: str) -> str:
    """Return the safe HTML of a comment's text."""
    html = autop(_escape(text))
    clean = nh3.clean(
        html,
        tags=_OUTPUT_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_checked_cite,
        url_schemes=_URL_SCHEMES,
        link_rel="nofollow ugc",
    )
    # A block quote splits its paragraph; drop the empty halves the parser leaves.
    return clean.replace("<p></p>", "")
