"""Who may use the moderation screens under /admin/: the blueprint, its door and its sessions.

Who may enter: a signed-in user whose `is_admin` is set — a local admin with a password
(`/admin/login`), or a social sign-in whose verified email is in ADMIN_EMAILS. Anyone else signed
in gets 403; anonymous visitors go to the admin sign-in. An admin session expires a fixed time
after signing in and after a spell of inactivity, whichever comes first.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, abort, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, logout_user, user_logged_in, user_logged_out

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Reachable without an admin session: the sign-in page itself, and the signed mail links
# (the signature is the authority there, and the action still takes a POST with CSRF).
PUBLIC_ENDPOINTS = {"admin.login", "admin.mail_action"}
# Requests that do not count as activity: an open live stream is not a moderator at work.
PASSIVE_ENDPOINTS = {"admin.live"}
AUTH_AT = "parley_admin_auth_at"
SEEN_AT = "parley_admin_seen_at"


def _stamp_sign_in(app, user, **extra) -> None:
    now = time.time()
    session[AUTH_AT] = now
    session[SEEN_AT] = now


def _forget_sign_in(app, user, **extra) -> None:
    session.pop(AUTH_AT, None)
    session.pop(SEEN_AT, None)


def session_deadline() -> float:
    """When this admin session ends (a time.time()); 0 if it never properly began."""
    auth_at = session.get(AUTH_AT)
    seen_at = session.get(SEEN_AT)
    if not isinstance(auth_at, int | float) or not isinstance(seen_at, int | float):
        return 0.0
    config = current_app.config
    lifetime = config["ADMIN_SESSION_LIFETIME"]
    idle = config["ADMIN_IDLE_TIMEOUT"]
    return min(auth_at + lifetime, seen_at + idle)


@bp.before_request
def require_admin():
    """Let admins in; send anonymous visitors to sign in; refuse everyone else."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("admin.login", next=target))
    if not current_user.is_admin:
        abort(403, "This page is for the site's moderators.")
    now = time.time()
    if session_deadline() <= now:
        logout_user()
        flash("Your session has expired. Please sign in again.", "warning")
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("admin.login", next=target))
    if request.endpoint not in PASSIVE_ENDPOINTS and now - session.get(SEEN_AT, 0) > 30:
        session[SEEN_AT] = now  # not on every request: the cookie need not change each time
    return None


def init_app(app: Flask) -> None:
    """Register the admin screens on *app*, and stamp its admin sessions' sign-in times."""
    user_logged_in.connect(_stamp_sign_in, app)
    user_logged_out.connect(_forget_sign_in, app)
    app.register_blueprint(bp)

