"""Security headers on every response: CSP without inline script, nosniff, referrer, framing, HSTS."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

# Scripts come only from our own origin (static/js): no inline script, no eval. Avatars come from
# Gravatar and the sign-in providers, so images may be any https origin. Styles stay 'self' too:
# the templates carry no style attributes (scripts set element.style, which CSP allows).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' https: data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def set_security_headers(response: Response) -> Response:
    """Add the security headers a view has not set itself; HSTS only over https."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    max_age = current_app.config["SECURITY_HSTS_SECONDS"]
    if max_age and request.is_secure:
        response.headers.setdefault("Strict-Transport-Security",
                                    f"max-age={int(max_age)}; includeSubDomains")
    return response


def register(app: Flask) -> None:
    """Install the headers, and trust X-Forwarded-* from as many proxies as PROXY_COUNT says."""
    proxies = app.config["PROXY_COUNT"]
    if proxies:
        # Without this, behind nginx every reader has the proxy's IP (one rate-limit bucket for
        # the whole world) and request.is_secure is false, so HSTS is never sent.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    app.after_request(set_security_headers)
