"""WordPress eXtended RSS (WXR): import a WordPress export, and export Parley as one.

`flask wxr import FILE` reads the file WordPress (Tools → Export) and WordPress.com write, in
every WXR version they have written (the `http://wordpress.org/export/1.0/` … `1.2/` namespaces),
and imports its published posts and their comments — threading, authors, dates, statuses and,
unless told otherwise, pingbacks and trackbacks. Importing the same file again changes nothing:
a post is found again by its slug, a comment by its original WordPress id (or, as WordPress's own
importer does, by its author and date). Imported comments are screened like every other comment
(text through the comment renderer, website through `http_url`) but are not live events: nothing
is broadcast and the event log is left alone.

`flask wxr export FILE` writes WXR 1.2 as WordPress's own exporter writes it, so every parser of
WordPress's importer reads it, with every post and every comment in every state. Parley's own post
fields (byline, source line, likes) travel in `_parley_*` post meta, so an export imported into an
empty Parley gives back the same blog.

WXR files are untrusted: they are parsed with defusedxml and refused if they carry a DTD (which
WordPress never writes, and entity-expansion and external-entity attacks need); comment text is
rendered by the comment sanitiser; post HTML is cleaned with nh3.

- parse.py     reading a file into plain records (`parse`, `WXRError`)
- convert.py   WordPress post content made Parley's (autop, sanitising)
- importer.py  staging posts and comments in the session (`import_wxr`); the caller commits
- export.py    writing WXR the way WordPress does (`export_wxr`)
- cli.py       the `flask wxr` commands, which own the transaction
"""

from app.wxr.cli import register, wxr_cli
from app.wxr.convert import clean_post_html, plain_text, post_autop
from app.wxr.export import ExportReport, export_wxr
from app.wxr.importer import ImportReport, import_wxr
from app.wxr.parse import WxrComment, WXRError, WxrFile, WxrItem, parse

__all__ = [
    "ExportReport", "ImportReport", "WXRError", "WxrComment", "WxrFile", "WxrItem",
    "clean_post_html", "export_wxr", "import_wxr", "parse", "plain_text", "post_autop",
    "register", "wxr_cli",
]
