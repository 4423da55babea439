"""Google and X against a strict, certified server: panva's oidc-provider 8 (tests/oauth/
oidc-server.mjs) checks the client secret, the exact redirect URI and PKCE (S256, required).
Parley runs in a thread; a `requests` session is the browser."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
import sqlalchemy as sa

from app.auth import oauth
from app.commands import seed_article
from app.extensions import db
from app.models import OAuthAccount, User
from tests.conftest import make_app, reset_database
from tests.oauth.servers import LiveServer, NodeServer

pytestmark = pytest.mark.node

PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"


@pytest.fixture(scope="module")
def strict():
    """Parley's address first (the provider registers exact redirect URIs), then the provider."""
    live = LiveServer()
    provider = None
    try:
        provider = NodeServer("oidc-server.mjs", live.url)
        yield live, provider
    finally:
        if provider is not None:
            provider.stop()
        live.stop()


def build_site(strict, tmp_path, **overrides):
    live, provider = strict
    clients = provider.info["clients"]
    settings = {
        "GOOGLE_CLIENT_ID": clients["google"]["client_id"],
        "GOOGLE_CLIENT_SECRET": clients["google"]["client_secret"],
        "GOOGLE_SERVER_METADATA_URL": f"{provider.url}/.well-known/openid-configuration",
        "TWITTER_CLIENT_ID": clients["twitter"]["client_id"],
        "TWITTER_CLIENT_SECRET": clients["twitter"]["client_secret"],
        "TWITTER_AUTHORIZE_URL": f"{provider.url}/auth",
        "TWITTER_ACCESS_TOKEN_URL": f"{provider.url}/token",
        "TWITTER_API_BASE_URL": f"{provider.url}/2/",
        "OAUTH_TIMEOUT": 5,
    }
    settings.update(overrides)
    app = make_app(f"sqlite:///{tmp_path / 'parley.db'}", **settings)
    reset_database(app)
    with app.app_context():
        seed_article()
    live.app = app
    return live


@pytest.fixture
def site(strict, tmp_path):
    live = build_site(strict, tmp_path)
    yield live
    with live.app.app_context():
        db.session.remove()
        db.engine.dispose()


def counts(site) -> tuple[int, int]:
    with site.app.app_context():
        return (db.session.scalar(sa.select(sa.func.count(User.id))),
                db.session.scalar(sa.select(sa.func.count(OAuthAccount.id))))


def start(site, provider: str, browser: requests.Session) -> str:
    """Begin at Parley; return the authorization URL it sends the browser to."""
    response = browser.get(f"{site.url}/login/{provider}", params={"next": PERMALINK},
                           allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:300]
    return response.headers["Location"]


def with_param(url: str, **params) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | params
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize("provider, name, label", [
    ("google", "Ayesha Khan", "Google"),
    ("twitter", "Zara Malik", "X (Twitter)"),
])
def test_sign_in(site, provider, name, label):
    browser = requests.Session()
    authorize = start(site, provider, browser)
    assert "code_challenge_method=S256" in authorize
    response = browser.get(authorize, timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.url == f"{site.url}{PERMALINK}#respond"
    assert f"You are commenting using your {label} account." in response.text
    assert name in response.text
    with site.app.app_context():
        user = db.session.scalar(sa.select(User))
        assert user.name == name
        if provider == "google":
            # oidc-provider's id_token carries only `sub`: the rest came from userinfo
            assert (user.email, user.email_verified) == ("ayesha.khan@example.com", True)
            assert user.accounts[0].subject == "google-ayesha"
        else:
            assert user.profile_url == "https://x.com/zaramalik"


@pytest.mark.parametrize("provider", ["google", "twitter"])
def test_wrong_client_secret(strict, tmp_path, provider):
    prefix = provider.upper()
    site = build_site(strict, tmp_path, **{f"{prefix}_CLIENT_SECRET": "not-the-secret"})
    browser = requests.Session()
    response = browser.get(start(site, provider, browser), timeout=10)
    assert response.status_code == 502
    assert "could not sign you in (invalid_client)" in response.text
    assert counts(site) == (0, 0)


@pytest.mark.parametrize("provider", ["google", "twitter"])
def test_missing_pkce_verifier(site, provider):
    """The authorization asked with a PKCE challenge, but the verifier was lost on the way back:
    the server refuses the code, and nothing is created."""
    browser = requests.Session()
    authorize = start(site, provider, browser)
    serializer = site.app.session_interface.get_signing_serializer(site.app)
    data = serializer.loads(browser.cookies["session"])
    for key, value in data.items():
        if key.startswith(f"_state_{provider}_"):
            del value["data"]["code_verifier"]
    browser.cookies.set("session", serializer.dumps(data), domain=urlsplit(site.url).hostname)
    response = browser.get(authorize, timeout=10)
    assert response.status_code == 502
    assert "could not sign you in (invalid_grant)" in response.text
    assert counts(site) == (0, 0)


def test_without_pkce_the_server_refuses_at_once(strict, tmp_path):
    """A client configured without PKCE (as a careless one would be) is turned away by the
    provider: the reader is back on the article with a message, not an error page."""
    site = build_site(strict, tmp_path)
    with site.app.test_request_context():
        oauth.client("twitter").client_kwargs.pop("code_challenge_method")
    browser = requests.Session()
    response = browser.get(start(site, "twitter", browser), timeout=10)
    assert response.status_code == 502
    assert "could not sign you in (invalid_request)" in response.text
    assert counts(site) == (0, 0)


@pytest.mark.parametrize("provider", ["google", "twitter"])
def test_cancel(site, provider):
    browser = requests.Session()
    authorize = with_param(start(site, provider, browser), login_hint="cancel")
    response = browser.get(authorize, timeout=10)
    assert response.status_code == 200
    assert "was cancelled." in response.text
    assert 'id="commentform"' in response.text
    assert counts(site) == (0, 0)


@pytest.mark.parametrize("provider", ["google", "twitter"])
def test_forged_state(site, provider):
    browser = requests.Session()
    authorize = start(site, provider, browser)
    at_provider = browser.get(authorize, allow_redirects=False, timeout=10)
    # follow the provider's own redirects up to the one that returns to Parley
    while not at_provider.headers["Location"].startswith(site.url):
        at_provider = browser.get(requests.compat.urljoin(at_provider.url,
                                                          at_provider.headers["Location"]),
                                  allow_redirects=False, timeout=10)
    callback = at_provider.headers["Location"]
    assert "code=" in callback
    response = browser.get(with_param(callback, state="forged-by-someone-else"), timeout=10)
    assert response.status_code == 400
    assert "Your sign-in expired or could not be checked." in response.text
    assert counts(site) == (0, 0)
