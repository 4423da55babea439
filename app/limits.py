"""Rate limits on the doors people hammer (posting a comment, signing in), and on the mail
anyone can make Parley send.

The request limits live here, in one table, rather than as decorators scattered over other areas'
views: `register()` runs after every blueprint is in place and wraps the endpoints that exist. The
admin password sign-in carries its own limit (ADMIN_LOGIN_RATE_LIMIT, in app/admin/views.py).
Mail is limited per recipient mailbox and per client IP by `allow_mail()`, which every door that
mails asks on the mail thread just before it sends. Counters are kept in Redis when REDIS_URL is
set (shared by every worker and host), in memory otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time

from flask import Flask, current_app, has_request_context, request
from flask_limiter.errors import RateLimitExceeded
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.errors import error_response
from app.extensions import limiter

log = logging.getLogger(__name__)


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


# --- who is asking ----------------------------------------------------------------------------

def client_ip() -> str | None:
    """The address of the request being served (after ProxyFix: behind PROXY_COUNT trusted
    proxies, the reader's own), or None outside a request (the command line)."""
    return (request.remote_addr or None) if has_request_context() else None


def client_key(ip: str) -> str:
    """What one client is counted as: its IPv4 address, or its IPv6 /64 (a home or a server is
    given a whole /64, so counting single IPv6 addresses would let one client count as many)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is an IPv4 client
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def without_tag(email: str) -> str:
    """*email* without a "+tag" on its mailbox (RFC 5233 subaddressing): `user+x@example.com`
    is delivered to `user@example.com`."""
    local, at, domain = email.strip().lower().rpartition("@")
    if not at or not local:
        return email.strip().lower()
    return f"{local.partition('+')[0] or local}@{domain}"


# --- mail ----------------------------------------------------------------------------------

# Which per-IP count each kind of mail draws on: what a client asks to be sent to an address it
# names, and moderator mail about a commenter's held comments (so a commenter's own confirmation
# and the moderators' mail about their comment do not spend one count).
IP_COUNT = {"like": "asked", "subscription": "asked", "privacy": "asked", "moderation": "held"}
# Mailboxes that ignore dots before the @: one inbox, however many spellings an attacker uses.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


class _MailCounters:
    """This app's mail counters, in the rate limits' storage (REDIS_URL under REDIS_PREFIX, or
    memory), with a memory stand-in for while that storage is away."""

    def __init__(self, app: Flask) -> None:
        options = app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}
        self.shared = MovingWindowRateLimiter(
            storage_from_string(app.config["RATELIMIT_STORAGE_URI"], **options))
        self.fallback = MovingWindowRateLimiter(MemoryStorage())


def _counters(app: Flask) -> _MailCounters:
    counters = app.extensions.get("parley.mail_limits")
    if counters is None:
        counters = app.extensions.setdefault("parley.mail_limits", _MailCounters(app))
    return counters


def _mailbox(address: str) -> str:
    """A keyed digest of the inbox *address* reaches: counters never hold an address in clear
    (a commenter who erases their data leaves none behind in Redis)."""
    local, _, domain = without_tag(address).rpartition("@")
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"{local}@{domain}".encode(), hashlib.sha256).hexdigest()[:32]


def masked(address: str) -> str:
    """*address* as a log line shows it: its first letter and its domain (`v…@example.com`)."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}…@{domain}"


Check = tuple[str, RateLimitItem, tuple[str, ...]]


def _over(counter: MovingWindowRateLimiter, checks: list[Check]) -> str | None:
    """The setting whose limit one more mail would pass, or None after counting it everywhere.

    Every count is tested before any is spent: a client over its IP limit spends nothing of
    its target's count, and a full mailbox spends nothing of the client's.
    """
    for setting, item, key in checks:
        if not counter.test(item, *key):
            return setting
    for setting, item, key in checks:
        if not counter.hit(item, *key):  # another request took the last one meanwhile
            return setting
    return None


def allow_mail(kind: str, *, to: str | None = None, ip: str | None = None) -> bool:
    """Count one mail of *kind* to *to* asked for from *ip*: True to send it, or False — said
    in an INFO log line, with the address masked — when either is over its limit
    (MAIL_LIMIT_PER_ADDRESS, MAIL_LIMIT_PER_IP). The caller answers its client the same either
    way, so nobody learns from the answer whether a mail went.
    """
    app = current_app._get_current_object()
    if not app.config["RATELIMIT_ENABLED"]:
        return True
    checks: list[Check] = []
    if ip:
        checks += [("MAIL_LIMIT_PER_IP", item, ("parley-mail", IP_COUNT[kind], client_key(ip)))
                   for item in parse_many(app.config["MAIL_LIMIT_PER_IP"])]
    if to:
        checks += [("MAIL_LIMIT_PER_ADDRESS", item, ("parley-mail", "to", _mailbox(to)))
                   for item in parse_many(app.config["MAIL_LIMIT_PER_ADDRESS"])]
    counters = _counters(app)
    try:
        over = _over(counters.shared, checks)
    except Exception:  # Redis away: count in this process meanwhile rather than mail unchecked
        log.warning("mail limits: the shared counters are unreachable; counting in memory",
                    exc_info=True)
        over = _over(counters.fallback, checks)
    if over is None:
        return True
    log.info("mail withheld: %s mail to %s asked from %s is over %s", kind,
             masked(to) if to else "the moderators", ip or "the command line", over)
    return False
