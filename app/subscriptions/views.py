"""The links in subscription mails: confirm (double opt-in) and unsubscribe (one click)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from app.extensions import csrf
from app.signing import BadLink
from app.subscriptions import service

bp = Blueprint("subscriptions", __name__, url_prefix="/subscriptions")


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """Show what the link confirms (GET); confirm it (POST, from the page's button)."""
    return _follow(token, "confirm")


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058 one-click: mail clients POST `List-Unsubscribe=One-Click` with no token
def unsubscribe(token: str):
    """Show what the link unsubscribes (GET); unsubscribe (POST: the button or the mail client)."""
    return _follow(token, "unsubscribe")


def _follow(token: str, action: str):
    """GET shows what the link would do and asks; POST does it. A bad link gets a 400 page."""
    confirming = action == "confirm"
    try:
        if request.method == "POST":
            done = service.confirm if confirming else service.unsubscribe
            return render_template("subscriptions/done.html", subscription=done(token),
                                   confirmed=confirming)
        subscription = service.load(token, confirm=confirming)
    except BadLink as bad:
        return render_template("subscriptions/done.html", error=str(bad)), 400
    return render_template("subscriptions/ask.html", subscription=subscription, action=action)
