"""`flask wxr import FILE [--skip-pings]` and `flask wxr export FILE`: the commands own the
transaction and the progress bars; the work is in importer.py and export.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.extensions import db
from app.models import Post
from app.wxr.export import export_wxr
from app.wxr.importer import import_wxr
from app.wxr.parse import WXRError, WxrItem, parse

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

    try:
        report = import_wxr(wxr, skip_pings=skip_pings, progress=progress)
        db.session.commit()  # the whole file, or (below) nothing of it
    except BaseException:
        db.session.rollback()
        raise
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
