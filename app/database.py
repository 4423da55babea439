"""Engine settings that depend on the database: SQLite pragmas."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine


def configure_engine_events(engine: Engine) -> None:
    """Turn on WAL, a busy timeout and foreign keys for every SQLite connection."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def set_sqlite_pragmas(dbapi_connection, connection_record) -> None:
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


_AFTER_COMMIT = "parley.after_commit"


def after_commit(callback) -> None:
    """Run *callback()* once the current transaction commits (dropped if it rolls back)."""
    from sqlalchemy.orm import Session

    from app.extensions import db

    session = db.session()
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)
    if not event.contains(Session, "after_commit", _run_after_commit):
        event.listen(Session, "after_commit", _run_after_commit)
        event.listen(Session, "after_soft_rollback", _drop_after_commit)


def _run_after_commit(session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


def _drop_after_commit(session, previous_transaction=None) -> None:
    session.info.pop(_AFTER_COMMIT, None)
