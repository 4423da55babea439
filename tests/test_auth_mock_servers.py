"""The full redirect flow of all four providers, end to end over HTTP: Parley served from a thread,
each provider played by an oauth2-mock-server on 127.0.0.1 with that provider's endpoint paths,
client authentication and JSON (tests/oauth/mock-provider.mjs), and a `requests` session as the
browser following every redirect."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from app.auth import oauth
from app.extensions import db
from app.models import OAuthAccount, User
from tests.oauth.servers import NodeServer, serve_parley

pytestmark = pytest.mark.node

PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"
CLIENT_ID, CLIENT_SECRET = "parley-test-client", "parley-test-secret"
PATHS = {  # the provider's own paths, as Parley's settings would name them
    "wordpress": {"AUTHORIZE_URL": "/oauth2/authenticate", "ACCESS_TOKEN_URL": "/oauth2/token",
                  "API_BASE_URL": "/rest/v1.1/"},
    "google": {"SERVER_METADATA_URL": "/.well-known/openid-configuration"},
    "twitter": {"AUTHORIZE_URL": "/i/oauth2/authorize", "ACCESS_TOKEN_URL": "/2/oauth2/token",
                "API_BASE_URL": "/2/"},
    "facebook": {"API_BASE_URL": "/v19.0/", "AUTHORIZE_URL": "/v19.0/dialog/oauth",
                 "ACCESS_TOKEN_URL": "/v19.0/oauth/access_token"},
}
EXPECTED = {
    "wordpress": ("18342963", "Kamran Yousaf", "kamran.yousaf@example.com"),
    "google": ("110169484474386276334", "Ayesha Khan", "ayesha.khan@example.com"),
    "twitter": ("2244994945", "Zara Malik", None),
    "facebook": ("10158383950331234", "Bilal Ahmed", None),
}


@pytest.fixture(scope="module")
def mocks():
    servers: dict[str, NodeServer] = {}
    try:
        for name in PATHS:
            servers[name] = NodeServer("mock-provider.mjs", name, CLIENT_ID, CLIENT_SECRET)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def provider_settings(mocks, secret: str = CLIENT_SECRET) -> dict:
    settings = {"OAUTH_TIMEOUT": 2}
    for name, paths in PATHS.items():
        prefix = name.upper()
        settings[f"{prefix}_CLIENT_ID"] = CLIENT_ID
        settings[f"{prefix}_CLIENT_SECRET"] = secret
        for key, path in paths.items():
            settings[f"{prefix}_{key}"] = mocks[name].url + path
    return settings


@pytest.fixture
def site(mocks, tmp_path):
    yield from serve_parley(tmp_path, **provider_settings(mocks))


def sign_in(site, provider: str) -> requests.Response:
    browser = requests.Session()
    response = browser.get(f"{site.url}/login/{provider}", params={"next": PERMALINK}, timeout=10)
    response.browser = browser
    return response


@pytest.mark.parametrize("provider", list(PATHS))
def test_full_redirect_flow(site, mocks, provider):
    response = sign_in(site, provider)
    hops = [r.status_code for r in response.history]
    assert hops == [302, 302, 303], [r.url for r in response.history]
    assert response.history[0].headers["Location"].startswith(mocks[provider].url)
    assert response.status_code == 200
    assert response.url == f"{site.url}{PERMALINK}#respond"
    label = {"wordpress": "WordPress.com", "google": "Google", "twitter": "X (Twitter)",
             "facebook": "Facebook"}[provider]
    assert f"You are commenting using your {label} account." in response.text
    subject, name, email = EXPECTED[provider]
    assert name in response.text
    with site.app.app_context():
        account = db.session.scalar(sa.select(OAuthAccount))
        assert (account.provider, account.subject) == (provider, subject)
        assert (account.user.name, account.user.email) == (name, email)
    # and the reader can comment under that identity, with no name or email fields
    state = response.browser.get(f"{site.url}/api/session", timeout=10).json()
    posted = response.browser.post(
        f"{site.url}/api/posts/pakistan-russia-agree-to-bury-the-hatchet/comments",
        json={"comment": f"Hello from {provider}"},
        headers={"X-CSRFToken": state["csrf_token"], "Origin": site.url}, timeout=10)
    assert posted.status_code == 201, posted.text
    assert posted.json()["comment"]["author"] == name


def assert_back_on_article(site, response, status: int, message: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert message in response.text
    assert 'id="commentform"' in response.text
    with site.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(OAuthAccount.id))) == 0


def test_cancel(site, mocks):
    mocks["facebook"].post_next(authorize={"error": "access_denied",
                                           "error_description": "Permissions error"})
    response = sign_in(site, "facebook")
    assert_back_on_article(site, response, 200, "Sign-in with Facebook was cancelled.")


def test_wrong_client_secret(mocks, tmp_path):
    site = serve_parley(tmp_path, **provider_settings(mocks, secret="wrong"))
    live = next(site)
    try:
        response = sign_in(live, "wordpress")
        assert_back_on_article(live, response, 502,
                               "WordPress.com could not sign you in (invalid_client).")
        response = sign_in(live, "twitter")  # X answers 401 to a wrong Basic secret
        assert_back_on_article(live, response, 502, "could not sign you in (invalid_client).")
    finally:
        site.close()  # stops the server and closes the pool (the generator's own clean-up)


def test_token_endpoint_error(site, mocks):
    mocks["google"].post_next(token={"status": 400, "body": {"error": "invalid_grant"}})
    response = sign_in(site, "google")
    assert_back_on_article(site, response, 502, "Google could not sign you in (invalid_grant).")


def test_profile_endpoint_5xx(site, mocks):
    mocks["twitter"].post_next(profile={"status": 503, "body": {"title": "Service Unavailable"}})
    response = sign_in(site, "twitter")
    assert_back_on_article(site, response, 502, "X (Twitter) is not answering properly.")


def test_profile_endpoint_too_slow(site, mocks):
    mocks["wordpress"].post_next(profileDelay=4)  # Parley waits OAUTH_TIMEOUT=2 seconds
    response = sign_in(site, "wordpress")
    assert_back_on_article(site, response, 504, "WordPress.com did not answer in time.")


def test_provider_down(site, mocks):
    app = site.app
    app.config["WORDPRESS_ACCESS_TOKEN_URL"] = "http://127.0.0.1:9/oauth2/token"  # discard port
    oauth.init_app(app)
    response = sign_in(site, "wordpress")
    assert_back_on_article(site, response, 502, "WordPress.com is not answering properly.")
