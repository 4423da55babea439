"""A fifth provider is one record: GitHub, written here as app/auth/providers.py would hold it,
gets its icon on the article page, its /login/github redirect (state and PKCE) and its callback
that signs the reader in with the mapped profile — with no other change to Parley.

GitHub is played in-process with `responses` at its real addresses (as tests/test_auth.py plays
the four); the token endpoint checks the client secret and the PKCE verifier as GitHub does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import sqlalchemy as sa

from app.auth import providers
from app.auth.providers import Provider, first_text
from app.commands import seed_article
from app.extensions import db
from app.models import OAuthAccount
from tests.conftest import make_app, reset_database

PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"
DATA = Path(__file__).resolve().parent / "data"
CLIENT_ID, CLIENT_SECRET = "Iv1.github-client", "github-secret"

GITHUB = Provider(
    name="github", label="GitHub",
    icon="img/github.svg", icon_alt="GitHub mark",
    authorize_url="https://github.com/login/oauth/authorize",
    access_token_url="https://github.com/login/oauth/access_token",
    api_base_url="https://api.github.com/",
    scope="read:user",
    token_endpoint_auth_method="client_secret_post",
    pkce=True,
    profile_endpoint="user",
    profile_claims=lambda raw: {
        "sub": raw.get("id"),
        "name": first_text(raw.get("name"), raw.get("login")),
        # /user shows the *public* address, which GitHub does not say is verified (that takes
        # the user:email scope and /user/emails): not kept.
        "email": raw.get("email"), "email_verified": False,
        "picture": raw.get("avatar_url"),
        "profile": raw.get("html_url"),
    },
)


def recorded(name: str):
    return json.loads((DATA / name).read_text("utf-8"))


@pytest.fixture
def with_github(monkeypatch):
    """What adding GITHUB to `PROVIDERS` in app/auth/providers.py does, for this test only:
    every module that imported the list, or the index by name, sees the longer one."""
    records, by_name = providers.PROVIDERS, providers.PROVIDERS_BY_NAME
    patched = 0
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").partition(".")[0] != "app":
            continue
        if getattr(module, "PROVIDERS", None) is records:
            monkeypatch.setattr(module, "PROVIDERS", (*records, GITHUB))
            patched += 1
        if getattr(module, "PROVIDERS_BY_NAME", None) is by_name:
            monkeypatch.setattr(module, "PROVIDERS_BY_NAME", {**by_name, GITHUB.name: GITHUB})
            patched += 1
    assert patched >= 2


@pytest.fixture
def github_app(with_github, database_url):
    app = make_app(database_url, GITHUB_CLIENT_ID=CLIENT_ID, GITHUB_CLIENT_SECRET=CLIENT_SECRET)
    reset_database(app)
    with app.app_context():
        seed_article()
    return app


class GitHub:
    """GitHub's token endpoint and /user, inside `responses`."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.challenge: str | None = None
        self.token_requests: list = []
        mock.add_callback("POST", "https://github.com/login/oauth/access_token",
                          callback=self._token)
        self.user = mock.get("https://api.github.com/user", json=recorded("github_user.json"))

    def _token(self, request):
        self.token_requests.append(request)
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"error": "incorrect_client_credentials"})
        verifier = form.get("code_verifier", "").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if digest.decode() != self.challenge:
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"error": "invalid_grant", "error_description": "PKCE verification failed"})
        return 200, {"Content-Type": "application/json"}, json.dumps(recorded("github_token.json"))


@pytest.fixture
def github():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield GitHub(mock)


def test_the_fifth_record_is_an_icon_after_the_four(github_app):
    html = github_app.test_client().get(PERMALINK).get_data(as_text=True)
    assert (f'<a href="/login/github?next={PERMALINK}" id="postas-github" '
            'class="nascar-signin-link provider-github" title="Log in with GitHub">'
            '<img src="/static/img/github.svg" alt="GitHub mark" width="25" height="25"></a>'
            ) in html
    order = [html.index(f'id="postas-{name}"')
             for name in ("wordpress", "google", "twitter", "facebook", "github")]
    assert order == sorted(order)


def test_the_fifth_record_without_credentials_is_a_disabled_icon_and_a_404(with_github,
                                                                           database_url):
    app = make_app(database_url)
    reset_database(app)
    with app.app_context():
        seed_article()
    client = app.test_client()
    html = client.get(PERMALINK).get_data(as_text=True)
    assert 'title="GitHub sign-in is not configured on this site"' in html
    assert client.get("/login/github").status_code == 404


def test_the_fifth_record_signs_a_reader_in(github_app, github):
    client = github_app.test_client()
    response = client.get("/login/github", query_string={"next": PERMALINK})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == GITHUB.authorize_url
    assert params["client_id"] == CLIENT_ID and params["response_type"] == "code"
    assert params["scope"] == "read:user"
    assert params["redirect_uri"] == "http://localhost/auth/github/callback"
    assert len(params["state"]) >= 20
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert "nonce" not in params  # plain OAuth 2.0: no id_token to bind one to
    github.challenge = params["code_challenge"]

    response = client.get("/auth/github/callback",
                          query_string={"code": "gh-code", "state": params["state"]})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert response.headers["Location"] == f"{PERMALINK}#respond"
    assert parse_qs(github.token_requests[-1].body)["code"] == ["gh-code"]
    profile_call = github.user.calls[-1].request
    assert profile_call.headers["Authorization"] == (
        f"Bearer {recorded('github_token.json')['access_token']}")

    with github_app.app_context():
        account = db.session.scalar(sa.select(OAuthAccount))
        assert (account.provider, account.subject) == ("github", "5832311")
        user = account.user
        assert user.name == "Hina Qureshi"
        assert user.email is None  # a public address GitHub does not vouch for
        assert user.avatar_url == "https://avatars.githubusercontent.com/u/5832311?v=4"
        assert user.profile_url == "https://github.com/hinaqureshi"
    page = client.get(PERMALINK).get_data(as_text=True)
    assert "You are commenting using your GitHub account." in page
    assert client.get("/api/session").get_json()["user"]["provider"] == "GitHub"


def test_the_fifth_record_refuses_a_lost_pkce_verifier(github_app, github):
    client = github_app.test_client()
    response = client.get("/login/github", query_string={"next": PERMALINK})
    state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
    github.challenge = "a-challenge-for-another-verifier"
    response = client.get("/auth/github/callback", query_string={"code": "c", "state": state})
    assert response.status_code == 502
    assert "GitHub could not sign you in (invalid_grant)." in response.get_data(as_text=True)
    with github_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(OAuthAccount.id))) == 0
