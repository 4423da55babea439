"""Engine settings that depend on the database (SQLite pragmas), the after-commit queue, and
session helpers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Hashable
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.extensions import db

log = logging.getLogger(__name__)


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


def after_commit(callback: Callable[[], None], *, key: Hashable | None = None) -> Callable[[], None]:
    """Run *callback()* once the current transaction commits; drop it if the transaction rolls back.

    The one after-commit queue: every effect of a change that must not happen unless the change is
    stored (the live publish, moderator and subscriber mail, emptying the page window) is
    registered here by the code that makes the change. A *key* registers an effect once per
    transaction however many changes ask for it (one publish per post, say). Effects run in the
    order they were registered; one that fails is logged and the others still run. Returns the
    effect that will run: *callback*, or the one registered earlier under the same *key*.
    """
    queue: dict[Hashable, Callable[[], None]] = db.session().info.setdefault(_AFTER_COMMIT, {})
    return queue.setdefault(key if key is not None else object(), callback)


def pending_effects(session: so.Session) -> int:
    """How many effects wait for *session*'s commit (for tests and logs)."""
    return len(session.info.get(_AFTER_COMMIT, ()))


def install_after_commit() -> None:
    """Run the queue on commit and empty it on rollback, for every session (called once by
    create_app; idempotent)."""
    if not event.contains(so.Session, "after_commit", _run_after_commit):
        event.listen(so.Session, "after_commit", _run_after_commit)
        event.listen(so.Session, "after_soft_rollback", _drop_after_commit)


def _run_after_commit(session: so.Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, {}).values():
        try:
            callback()
        except Exception:  # the change is stored: one failed effect must not hide it or the rest
            log.exception("after commit: %r failed", callback)


def _drop_after_commit(session: so.Session, previous_transaction) -> None:
    if previous_transaction.nested:  # a savepoint: the transaction's own effects still stand
        return
    session.info.pop(_AFTER_COMMIT, None)


def insert_loaded(session: so.Session, obj: Any) -> None:
    """Store the new object *obj* with one plain INSERT and add it to *session* as a loaded row.

    For a hot path that adds one row the unit of work would otherwise flush: that flush (history,
    dependency sort, events) costs more than the INSERT itself. Column defaults are filled in on
    the object first, so it holds exactly what was stored; its relationships are left unloaded and
    resolve from the identity map when read. Session events (`after_flush`) do not see it: only
    use it where nothing listens for this object's flush.
    """
    mapper = sa.inspect(obj).mapper
    insert, columns, primary_key = _insert_plan(mapper)
    values: dict[str, Any] = {}
    for key, column_key, column in columns:
        if key not in obj.__dict__:  # unset: the object holds what the row gets
            setattr(obj, key, _default(column))
        values[column_key] = obj.__dict__[key]
    result = session.connection().execute(insert, values)
    for key, value in zip(primary_key, result.inserted_primary_key, strict=True):
        setattr(obj, key, value)
    so.make_transient_to_detached(obj)
    session.add(obj)


@functools.cache
def _insert_plan(mapper: so.Mapper) -> tuple[sa.Insert, list[tuple[str, str, sa.Column]], list[str]]:
    """The INSERT for *mapper*'s table, its columns (attribute, column key, column) and the
    attributes of its primary key: worked out once per class."""
    columns = [(attr.key, attr.columns[0].key, attr.columns[0]) for attr in mapper.column_attrs
               if not attr.columns[0].primary_key]
    primary_key = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    return sa.insert(mapper.local_table), columns, primary_key


def _default(column: sa.Column) -> Any:
    """What an INSERT without *column* would store, worked out in Python."""
    default = column.default
    if column.server_default is not None or (default is not None and default.is_clause_element):
        raise TypeError(f"{column}: a default the database computes is not known before reading")
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg
