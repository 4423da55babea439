"""The links in subscription mails: confirm (double opt-in) and unsubscribe (one click)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from app.extensions import csrf
from app.subscriptions import service

bp = Blueprint("subscriptions", __name__, url_prefix="/subscriptions")


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """Show what the link confirms (GET); confirm it (POST, from the page's button)."""
    try:
        if request.method == "POST":
            subscription = service.confirm(token)
            return render_template("subscriptions/done.html", subscription=subscription,
                                   confirmed=True)
        subscription = service.load(token, confirm=True)
    except service.BadLink as bad:
        return render_template("subscriptions/done.html", error=str(bad)), 400
    return render_template("subscriptions/ask.html", subscription=subscription, action="confirm")


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058 one-click: mail clients POST `List-Unsubscribe=One-Click` with no token
def unsubscribe(token: str):
    """Show what the link unsubscribes (GET); unsubscribe (POST: the button or the mail client)."""
    try:
        if request.method == "POST":
            subscription = service.unsubscribe(token)
            return render_template("subscriptions/done.html", subscription=subscription,
                                   confirmed=False)
        subscription = service.load(token, confirm=False)
    except service.BadLink as bad:
        return render_template("subscriptions/done.html", error=str(bad)), 400
    return render_template("subscriptions/ask.html", subscription=subscription,
                           action="unsubscribe")
