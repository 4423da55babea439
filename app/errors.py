"""One place for error responses: JSON for the API and JSON clients, themed HTML otherwise."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from app.extensions import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood.",
    403: "You are not allowed to do that.",
    404: "The page you were looking for is not here.",
    405: "That method is not allowed here.",
    409: "That conflicts with what is already stored.",
    413: "That is too large to accept.",
    429: "Too many requests. Please slow down and try again shortly.",
    500: "Something went wrong on our side. Please try again.",
    502: "A service we depend on failed. Please try again.",
    503: "The service is briefly unavailable. Please try again shortly.",
}


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes[
        "text/html"
    ]


def error_response(status: int, message: str | None = None, error: str | None = None,
                   fields: dict[str, str] | None = None, headers: dict[str, str] | None = None):
    """Answer *status* in the client's language: `{"error", "message", "fields"}` or a page."""
    message = message or MESSAGES.get(status, "Error")
    if wants_json():
        body = {"error": error or _slug(status), "message": message, "fields": fields or {}}
        response = jsonify(body)
    else:
        response = render_template("errors/error.html", status=status, message=message)
    if isinstance(response, str):
        response = make_response(response)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _slug(status: int) -> str:
    return HTTP_STATUS_CODES.get(status, "error").lower().replace(" ", "_").replace("'", "")


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(400, f"Your form expired or was forged ({exc.description}). "
                              "Reload the page and try again.", error="csrf_failed")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        headers = {}
        if status == 429:
            retry = getattr(exc, "retry_after", None)
            if retry:
                headers["Retry-After"] = str(retry)
        if status == 405 and exc.get_response().headers.get("Allow"):
            headers["Allow"] = exc.get_response().headers["Allow"]
        message = MESSAGES.get(status) if exc.description == type(exc).description else None
        return error_response(status, message or exc.description, headers=headers)

    @app.errorhandler(sa.exc.OperationalError)
    def database_unavailable(exc: sa.exc.OperationalError):
        db.session.rollback()
        log.error("database unavailable on %s %s: %s", request.method, request.path, exc)
        return error_response(503, headers={"Retry-After": "5"})

    @app.errorhandler(sa.exc.DataError)
    def unstorable_value(exc: sa.exc.DataError):
        # A value the database refuses (a NUL in a PostgreSQL text, a number out of range) came
        # from the request: the client's mistake, not ours.
        db.session.rollback()
        log.warning("unstorable value on %s %s: %s", request.method, request.path, exc.orig)
        return error_response(400, "The request contains a value that cannot be stored.",
                              error="invalid")

    @app.errorhandler(InternalServerError)
    def internal_error(exc: InternalServerError):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path,
                      exc_info=exc.original_exception or exc)
        return error_response(500)
