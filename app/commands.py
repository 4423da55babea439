"""Operator commands: `flask --app app seed`, and the command groups of each area."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from html import escape
from importlib import resources
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext

from app.comments import cli as comments_cli
from app.comments.content import render
from app.extensions import db
from app.models import Comment, CommentStatus, Post


def seed_article() -> tuple[Post, bool]:
    """Load the 2011 article and its reader comment unless they are there; return (post, created)."""
    data = json.loads(resources.files("app.data").joinpath("article.json").read_text("utf-8"))
    post = db.session.scalar(sa.select(Post).where(Post.slug == data["slug"]))
    if post is not None:
        return post, False
    post = Post(
        slug=data["slug"],
        title=data["title"],
        published_at=datetime.fromisoformat(data["published_at"]),
        byline=data["byline"],
        standfirst=data["standfirst"],
        body="\n".join(f"<p>{escape(p)}</p>" for p in data["paragraphs"]),
        source_line=data["source_line"],
        like_count=data["like_count"],
    )
    db.session.add(post)
    db.session.flush()
    for item in data["comments"]:
        created = datetime.fromisoformat(item["created_at"])
        db.session.add(
            Comment(
                post_id=post.id,
                author_name=item["author_name"],
                author_email=item["author_email"],
                author_url=item["author_url"],
                content=item["content"],
                content_html=render(item["content"]),
                status=CommentStatus.APPROVED,
                created_at=created,
                updated_at=created,
            )
        )
    db.session.commit()
    return post, True


def backup_sqlite(target: Path) -> str:
    """Copy the SQLite database to *target* with SQLite's online backup API, in one step: one
    consistent snapshot, taken while Parley goes on writing (in WAL mode a reader holds no
    writer back). The copy is written beside *target* and renamed into place when complete."""
    partial = target.with_name(f".{target.name}.partial")
    source = db.engine.raw_connection()
    try:
        copy = sqlite3.connect(partial)
        try:
            source.driver_connection.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            copy.close()
        if check != "ok":
            raise click.ClickException(f"the copy does not check out ({check}); nothing was kept")
        os.replace(partial, target)
    finally:
        source.close()
        partial.unlink(missing_ok=True)
    return ("To restore: stop Parley, copy it over the database file (deleting that file's "
            "-wal and -shm), start Parley.")


def backup_postgresql(url: sa.URL, target: Path) -> str:
    """Dump the PostgreSQL database to *target* with pg_dump (custom format, one consistent
    snapshot), when pg_dump is on PATH."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise click.ClickException(
            "pg_dump is not on PATH. Install the PostgreSQL client (Debian: apt-get install "
            "postgresql-client, of the server's major version or newer) and run this again, or "
            "run `pg_dump --format=custom --file FILE DATABASE` yourself.")
    partial = target.with_name(f".{target.name}.partial")
    environ = dict(os.environ, **({"PGPASSWORD": url.password} if url.password else {}))
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    try:
        result = subprocess.run([pg_dump, "--format=custom", "--file", str(partial),
                                 "--dbname", dsn], env=environ, capture_output=True, text=True)
        if result.returncode:
            raise click.ClickException(f"pg_dump failed: {result.stderr.strip()}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return ("To restore: pg_restore --clean --if-exists --no-owner --dbname DATABASE "
            f"{target}")


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup(file: Path) -> None:
    """Write a consistent copy of the database to FILE, safe while Parley runs.

    SQLite: SQLite's online backup. PostgreSQL: pg_dump's custom format (pg_dump must be on
    PATH). FILE must not exist yet.
    """
    if file.exists():
        raise click.ClickException(f"{file} already exists: give a new file name (nothing was "
                                   "written).")
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        restore = backup_sqlite(file)
    elif url.get_backend_name() == "postgresql":
        restore = backup_postgresql(url, file)
    else:
        raise click.ClickException(f"no backup for {url.get_backend_name()} here: use its own "
                                   "dump tool.")
    click.echo(f"Backed up {url.render_as_string()} to {file} ({file.stat().st_size:,} "
               f"bytes). {restore}")


def register(app: Flask) -> None:
    comments_cli.register(app)
    # Flask-Migrate's `db` group is one object for every app; adding the command again replaces it.
    app.cli.commands["db"].add_command(backup)

    @app.cli.command("seed")
    def seed() -> None:
        """Load the article and its existing comment (idempotent)."""
        post, created = seed_article()
        if created:
            click.echo(f"Seeded “{post.title}” with its reader comment.")
        else:
            click.echo(f"“{post.title}” is already there; nothing changed.")
