"""Rate limits on the doors people hammer: posting a comment and signing in.

The limits live here, in one table, rather than as decorators scattered over other areas' views:
`register()` runs after every blueprint is in place and wraps the endpoints that exist. The admin
password sign-in carries its own limit (ADMIN_LOGIN_RATE_LIMIT, in app/admin/views.py). Counters
are kept in Redis when REDIS_URL is set (shared by every worker and host), in memory otherwise.
"""

from __future__ import annotations

import time

from flask import Flask, current_app
from flask_limiter.errors import RateLimitExceeded

from app.errors import error_response
from app.extensions import limiter


# Module-level providers (not lambdas) so that an app built twice registers the same limit once.
def posting_limit() -> str:
    return current_app.config["RATELIMIT_POSTING"]


def signin_limit() -> str:
    return current_app.config["RATELIMIT_SIGNIN"]


LIMITS = {
    "comments.post_form": posting_limit,   # the no-JS comment form
    "api.create_comment": posting_limit,   # the JSON API
    "auth.login": signin_limit,            # /login/<provider>: starts a sign-in at a provider
}


def too_many_requests(exc: RateLimitExceeded):
    """Answer 429 with Retry-After: how many seconds until the window lets this client in again."""
    limit = limiter.current_limit
    retry = max(1, int(limit.reset_at - time.time()) + 1) if limit is not None else 60
    return error_response(429, headers={"Retry-After": str(retry)}, error="rate_limited")


def register(app: Flask) -> None:
    """Wrap each limited endpoint that this app has, and answer 429 with Retry-After.

    With RATELIMIT_ENABLED off the views stay unwrapped: Flask-Limiter's disabled decorator
    still looks up and evaluates the route's limits on every request (~3 % of a post's time).
    """
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    if not app.config["RATELIMIT_ENABLED"]:
        return
    for endpoint, provider in LIMITS.items():
        view = app.view_functions.get(endpoint)
        if view is not None:
            app.view_functions[endpoint] = limiter.limit(provider)(view)
