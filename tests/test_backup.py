"""`flask db backup FILE`: a consistent copy of the database, taken while Parley runs and writes.

Parley runs under gunicorn and posters write comments through its API while the command runs
as an operator runs it (a process of its own); each copy must open, check out, and hold a state
some commit left: every comment's `comment.created` event and every post's approved count
(kept by triggers) agree with the comments in the copy, and later copies hold more.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Comment, CommentStatus, Post
from tests.conftest import make_app
from tests.test_cluster import post_until
from tests.test_resilience import gunicorn_site, prepare_database

ROOT = Path(__file__).resolve().parent.parent
FLASK = Path(sys.executable).with_name("flask")
FILLER = 5000  # comments already there, so a copy takes long enough to overlap the writes


def fill(database_url: str, post_slug: str, count: int) -> None:
    app = make_app(database_url)
    with app.app_context():
        post = db.session.scalar(sa.select(Post).where(Post.slug == post_slug))
        db.session.execute(sa.insert(Comment), [
            {"post_id": post.id, "author_name": f"Reader {i}", "author_email": "r@example.com",
             "content": f"Filler {i} " + "words " * 120, "content_html": f"<p>Filler {i}</p>",
             "status": CommentStatus.APPROVED} for i in range(count)])
        db.session.commit()
        db.engine.dispose()


def backup(database_url: str, target: Path) -> subprocess.CompletedProcess:
    """`flask db backup TARGET` as an operator runs it, in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "REDIS_"))}
    env.update({"DATABASE_URL": database_url, "FLASK_APP": "app", "SECRET_KEY": "backup-test"})
    return subprocess.run([str(FLASK), "db", "backup", str(target)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def backups_while_posting(database_url: str, tmp_path: Path,
                           count: int) -> tuple[list[Path], int]:
    """*count* backups, one after another, while posters write through a running Parley;
    returns the copies and how many comments the posters had stored in the end."""
    slugs = prepare_database(database_url, fresh_posts=2)
    fill(database_url, slugs[0], FILLER)
    copies = []
    stop = threading.Event()
    with gunicorn_site(database_url, 2, tmp_path) as site:
        campaign, posters = post_until(site.url, slugs, stop, posters=3)
        try:
            time.sleep(1)
            for i in range(count):
                target = tmp_path / f"copy-{i}.backup"
                result = backup(database_url, target)
                assert result.returncode == 0, result.stderr
                assert f"to {target}" in result.stdout
                copies.append(target)
            time.sleep(0.5)
        finally:
            stop.set()
            for poster in posters:
                poster.join(30)
    assert set(campaign.statuses) == {201}, campaign.statuses
    return copies, len(campaign.accepted)


def check_consistent(conn) -> int:
    """Assert the copy's posted comments, their events and the counts agree; return how many
    comments the posters had stored when the copy was taken."""
    posted = set(conn.execute(sa.text(
        "SELECT id FROM comments WHERE content LIKE 'Load %'")).scalars())
    announced = {json.loads(data)["id"] for data in conn.execute(sa.text(
        "SELECT data FROM events WHERE kind = 'comment.created'")).scalars()}
    assert posted == announced, "a comment without its event, or an event without its comment"
    counted = dict(conn.execute(sa.text("SELECT post_id, approved FROM comment_counts")).all())
    actual = dict(conn.execute(sa.text(
        "SELECT post_id, count(*) FROM comments WHERE status = 'approved' GROUP BY post_id")).all())
    assert {k: v for k, v in counted.items() if v} == actual
    return len(posted)


def test_a_sqlite_backup_taken_while_parley_writes_is_consistent(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'parley.db'}"
    copies, posted = backups_while_posting(database_url, tmp_path, 3)
    sizes = []
    for copy in copies:
        assert sqlite3.connect(copy).execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert sqlite3.connect(copy).execute("PRAGMA journal_mode").fetchone() == ("delete",)
        engine = sa.create_engine(f"sqlite:///{copy}", poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            sizes.append(check_consistent(conn))
        engine.dispose()
    # each a later state than the one before, while the posters went on
    assert 0 < sizes[0] < sizes[1] < sizes[2] < posted, (sizes, posted)
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.skipif(not (shutil.which("pg_dump") and shutil.which("pg_restore")),
                    reason="needs pg_dump and pg_restore (apt-get install postgresql-client)")
def test_a_postgresql_backup_is_pg_dump_and_restores_consistent(postgres_url, tmp_path):
    copies, posted = backups_while_posting(postgres_url, tmp_path, 2)
    base = sa.make_url(postgres_url)
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    sizes = []
    for copy in copies:
        name = f"parley_restored_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            restored = base.set(database=name)
            dsn = restored.set(drivername="postgresql").render_as_string(hide_password=False)
            result = subprocess.run(["pg_restore", "--no-owner", "--dbname", dsn, str(copy)],
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            engine = sa.create_engine(restored, poolclass=sa.pool.NullPool)
            with engine.connect() as conn:
                sizes.append(check_consistent(conn))
            engine.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    assert 0 < sizes[0] < sizes[1] < posted, (sizes, posted)


@pytest.fixture
def sqlite_runner(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'parley.db'}")
    with app.app_context():
        db.create_all()
    return app.test_cli_runner()


def test_it_never_writes_over_a_file(sqlite_runner, tmp_path):
    existing = tmp_path / "monday.db"
    existing.write_bytes(b"last week's backup")
    result = sqlite_runner.invoke(args=["db", "backup", str(existing)])
    assert result.exit_code == 1
    assert "already exists" in result.output and "nothing was written" in result.output
    assert existing.read_bytes() == b"last week's backup"
    source = tmp_path / "parley.db"  # nor over the database itself
    before = source.read_bytes()
    result = sqlite_runner.invoke(args=["db", "backup", str(source)])
    assert result.exit_code == 1 and source.read_bytes() == before


def test_it_says_what_to_do_without_pg_dump(tmp_path, monkeypatch):
    """(No PostgreSQL needed: the command stops before connecting.)"""
    app = make_app("postgresql+psycopg://parley:secret@127.0.0.1:1/parley")
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump to be found
    result = app.test_cli_runner().invoke(args=["db", "backup", str(tmp_path / "x.dump")])
    assert result.exit_code == 1
    assert "pg_dump is not on PATH" in result.output and "postgresql-client" in result.output
    assert not (tmp_path / "x.dump").exists()
