"""SQLite writers across processes: waiting for the write lock must not stop a gevent worker.

SQLite's own busy handler sleeps inside C while another connection holds the write lock; under
gevent that sleep stops every request the worker holds. `app.database.begin_write` waits with
short sleeps that gevent turns into switches. These tests run on a real SQLite file; the gevent
one runs in a subprocess, because monkey-patching would leak into the rest of the suite.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

from app import database

ROOT = Path(__file__).resolve().parent.parent


def _session(path: Path) -> so.Session:
    engine = sa.create_engine(f"sqlite:///{path}")
    database.configure_engine_events(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, "
                                   "text TEXT)"))
    return so.Session(engine)


def _hold_lock(path: Path, seconds: float) -> threading.Thread:
    """Another writer (another worker, say) holding the write lock for *seconds*."""
    started = threading.Event()

    def hold():
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO notes (text) VALUES ('theirs')")
        started.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    started.wait(5)
    return thread


def test_a_writer_waits_for_the_lock_then_writes_and_the_busy_timeout_is_restored(tmp_path):
    session = _session(tmp_path / "db.sqlite")
    holder = _hold_lock(tmp_path / "db.sqlite", 0.3)
    started = time.monotonic()
    database.begin_write(session)
    waited = time.monotonic() - started
    session.execute(sa.text("INSERT INTO notes (text) VALUES ('mine')"))
    session.commit()
    holder.join()
    assert 0.2 <= waited < 3
    texts = session.scalars(sa.text("SELECT text FROM notes ORDER BY id")).all()
    assert texts == ["theirs", "mine"]
    assert session.execute(sa.text("PRAGMA busy_timeout")).scalar() == database.BUSY_TIMEOUT_MS
    session.close()
    session.get_bind().dispose()


def test_a_writer_gives_up_after_the_busy_timeout_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 300)
    session = _session(tmp_path / "db.sqlite")
    holder = _hold_lock(tmp_path / "db.sqlite", 1.5)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        database.begin_write(session)
    assert 0.3 <= time.monotonic() - started < 1.2
    session.rollback()
    holder.join()
    assert session.scalars(sa.text("SELECT text FROM notes")).all() == ["theirs"]
    assert session.execute(sa.text("PRAGMA busy_timeout")).scalar() == 300
    session.close()
    session.get_bind().dispose()


GEVENT_WORKER = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()

    import json, sqlite3, sys, time
    import gevent
    import sqlalchemy as sa
    import sqlalchemy.orm as so
    from app import database

    path = sys.argv[1]
    engine = sa.create_engine(f"sqlite:///{path}")
    database.configure_engine_events(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)"))
    ticks = []

    def other_requests():  # the rest of the worker: it should keep running
        while len(ticks) < 10_000:
            ticks.append(time.monotonic())
            gevent.sleep(0.001)

    def holder():  # a transaction of this same worker that yields while it holds the lock
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        gevent.sleep(0.3)
        other.execute("COMMIT")

    def writer():
        session = so.Session(engine)
        started, error = time.monotonic(), None
        try:
            if sys.argv[2] == "begin_write":
                database.begin_write(session)
            session.execute(sa.text("INSERT INTO notes (text) VALUES ('mine')"))
            session.commit()
        except sa.exc.OperationalError as exc:
            error = str(exc.orig)
        return started, time.monotonic(), error

    ticker = gevent.spawn(other_requests)
    hold = gevent.spawn(holder)
    gevent.sleep(0.05)
    started, done, error = gevent.spawn(writer).get()
    hold.join()
    ticker.kill()
    print(json.dumps({"waited": done - started, "error": error,
                      "ticks": sum(started <= t <= done for t in ticks)}))
""")


def _gevent_writer(tmp_path: Path, how: str) -> dict:
    result = subprocess.run([sys.executable, "-c", GEVENT_WORKER, str(tmp_path / f"{how}.db"), how],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_under_gevent_the_rest_of_the_worker_runs_while_a_writer_waits(tmp_path):
    """The writer waits 0.3 s for the lock; meanwhile the worker's other greenlets keep running
    (about one tick a millisecond), the holder among them, and the write goes through.

    With SQLite's own busy handler (a plain INSERT, as before) the whole process sleeps inside
    C instead: nothing else runs, so the holder never gets back to commit, and the writer gives
    up with "database is locked" after the full busy timeout."""
    cooperative = _gevent_writer(tmp_path, "begin_write")
    assert cooperative["error"] is None
    assert 0.2 <= cooperative["waited"] < 1.5
    assert cooperative["ticks"] >= 100
    blocking = _gevent_writer(tmp_path, "busy_handler")
    assert blocking["error"] == "database is locked"
    assert blocking["waited"] >= database.BUSY_TIMEOUT_MS / 1000 * 0.9
    assert blocking["ticks"] < 10
