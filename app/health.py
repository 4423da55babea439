"""Liveness: is the database (and the broker, when there is one) reachable?"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, current_app

from app import live
from app.extensions import db

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    """Report whether the database and the live broker answer."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not reachable"; say which
        log.warning("health check: database unreachable: %s", exc)
        db.session.rollback()
        checks["database"] = "unreachable"
    broker = live.existing_broker(current_app._get_current_object())
    if broker is not None:
        checks["broker"] = "ok" if broker.ping() else "unreachable"
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503
