"""Security headers, cookies and rate limits (issue 7, point 9)."""

from __future__ import annotations

import pytest

from tests.conftest import make_app, reset_database
from tests.test_comments import API, FORM, GUEST, api_post, configure, csrf_token

PAGE = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"


def _csp(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part for part in (p.strip() for p in policy.split(";")) if part}


@pytest.mark.parametrize("path", [PAGE, "/api/session", "/does-not-exist", "/healthz"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    csp = _csp(response)
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["object-src"] == "object-src 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_the_article_page_has_no_inline_script_for_the_policy_to_block(client):
    html = client.get(PAGE).get_data(as_text=True)
    assert "<script>" not in html and " on" + "click=" not in html
    assert '<script src="/static/' in html


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get(PAGE).headers
    secure = client.get(PAGE, base_url="https://blog.example.com")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_behind_a_proxy_https_is_recognised_when_told_how_many_proxies_to_trust(database_url):
    app = make_app(database_url, PROXY_COUNT=1)
    reset_database(app)
    response = app.test_client().get("/healthz", headers={"X-Forwarded-Proto": "https"})
    _dispose(app)
    assert "Strict-Transport-Security" in response.headers


def test_cookies_are_httponly_and_lax(client):
    client.get("/api/session")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert not cookie.secure  # development over http


def test_production_cookies_are_secure(monkeypatch):
    from config import get_config

    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    config = get_config("production")
    assert config.SESSION_COOKIE_SECURE and config.REMEMBER_COOKIE_SECURE
    assert config.SESSION_COOKIE_HTTPONLY and config.SESSION_COOKIE_SAMESITE == "Lax"


@pytest.fixture
def limited_app(database_url):
    app = make_app(database_url, RATELIMIT_POSTING="2 per minute", RATELIMIT_SIGNIN="2 per minute")
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    yield app
    _dispose(app)


def _dispose(app) -> None:
    from app.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_posting_through_the_api_is_rate_limited_with_retry_after(limited_app):
    client = limited_app.test_client()
    token = csrf_token(client)
    statuses = [api_post(client, {**GUEST, "comment": f"Limit {i}"}, token).status_code
                for i in range(3)]
    assert statuses == [201, 201, 429]
    response = api_post(client, {**GUEST, "comment": "Limit 4"}, token)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    assert response.get_json()["error"] == "rate_limited"


def test_the_comment_form_is_rate_limited_too(limited_app):
    client = limited_app.test_client()
    headers = {"Origin": "http://localhost"}
    statuses = [client.post(FORM, data={**GUEST, "comment": f"Form {i}"}, headers=headers).status_code
                for i in range(3)]
    assert statuses == [303, 303, 429]


def test_signing_in_is_rate_limited(limited_app):
    client = limited_app.test_client()
    statuses = [client.get("/login/google").status_code for _ in range(3)]
    assert statuses[-1] == 429 and 429 not in statuses[:2]


def test_admin_password_sign_in_is_rate_limited(client):
    import re

    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page)
    form = {"email": "a@example.com", "password": "wrong", "csrf_token": token.group(1)}
    statuses = [client.post("/admin/login", data=form).status_code for _ in range(7)]
    assert statuses[0] == 401 and statuses[-1] == 429
    last = client.post("/admin/login", data=form)
    assert last.status_code == 429 and int(last.headers["Retry-After"]) >= 1


@pytest.mark.redis
def test_rate_limits_are_stored_in_redis_when_there_is_one(database_url, redis_url, redis_prefix):
    import redis

    app = make_app(database_url, REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix)
    assert app.config["RATELIMIT_STORAGE_URI"] == redis_url
    assert app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"]  # a Redis outage never blocks posting
    assert app.test_client().get("/login/google").status_code != 429  # counted, not refused
    client = redis.Redis.from_url(redis_url)
    try:
        # under the site's own prefix, as its live channels are: two sites sharing a Redis keep
        # their own counts (and a test's prefix takes them away when it ends)
        counters = [key for key in client.scan_iter(f"{redis_prefix}*") if b"LIMITER" in key]
        assert counters and all(b"auth.login" in key for key in counters)
    finally:
        client.close()


def test_rate_limits_off_for_benchmarks(monkeypatch):
    from config import get_config

    monkeypatch.setenv("RATELIMIT_ENABLED", "false")
    assert get_config("development").RATELIMIT_ENABLED is False
    assert API  # the limited endpoints are the API and the form (see app/limits.py)
