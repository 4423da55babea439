"""Signing in with the four providers, through Flask's test client, against in-process providers.

The providers' HTTP endpoints are played with `responses` at their real addresses (the defaults
Parley registers), and Google's id_tokens are real RS256 JWTs signed with joserfc. This is the mock
half: test_auth_mock_servers.py and test_auth_oidc_provider.py run the same flows against real
OAuth servers on 127.0.0.1, and test_auth_browser.py through chromium.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.auth import oauth
from app.commands import seed_article
from app.extensions import db
from app.models import Comment, OAuthAccount, User
from tests.conftest import make_app, reset_database

PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"
DATA = Path(__file__).resolve().parent / "data"
CLIENT_ID, CLIENT_SECRET = "client-123", "secret-456"
GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_METADATA = {
    "issuer": GOOGLE_ISSUER,
    "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
    "token_endpoint": "https://oauth2.googleapis.com/token",
    "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
    "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
    "response_types_supported": ["code"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "code_challenge_methods_supported": ["plain", "S256"],
}
GOOGLE_KEY = RSAKey.generate_key(2048, parameters={"kid": "google-1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "google-1"})  # same kid, wrong key


def recorded(name: str):
    return json.loads((DATA / name).read_text("utf-8"))


def credentials(**extra):
    settings = {}
    for name in ("WORDPRESS", "GOOGLE", "TWITTER", "FACEBOOK"):
        settings[f"{name}_CLIENT_ID"] = CLIENT_ID
        settings[f"{name}_CLIENT_SECRET"] = CLIENT_SECRET
    settings.update(extra)
    return settings


@pytest.fixture
def auth_app(database_url):
    app = make_app(database_url, **credentials(ADMIN_EMAILS=["ayesha.khan@example.com"]))
    reset_database(app)
    with app.app_context():
        seed_article()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def auth_client(auth_app):
    return auth_app.test_client()


class Providers:
    """The four providers at their real addresses, inside `responses`."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.nonce: str | None = None
        self.id_token_claims: dict = {}
        self.id_token_key = GOOGLE_KEY
        self.token_requests: list[requests.PreparedRequest] = []
        mock.get("https://accounts.google.com/.well-known/openid-configuration", json=GOOGLE_METADATA)
        mock.get(GOOGLE_METADATA["jwks_uri"],
                 json={"keys": [GOOGLE_KEY.as_dict(private=False) | {"use": "sig", "alg": "RS256"}]})
        mock.add_callback("POST", GOOGLE_METADATA["token_endpoint"], callback=self._google_token)
        mock.get(GOOGLE_METADATA["userinfo_endpoint"], json=recorded("google_userinfo.json"))
        mock.add_callback("POST", "https://public-api.wordpress.com/oauth2/token",
                          callback=self._token(recorded("wordpress_token.json")))
        mock.get("https://public-api.wordpress.com/rest/v1.1/me", json=recorded("wordpress_me.json"))
        mock.add_callback("POST", "https://api.x.com/2/oauth2/token",
                          callback=self._token(recorded("twitter_token.json")))
        mock.get("https://api.x.com/2/users/me", json=recorded("twitter_users_me.json"))
        for version in ("v19.0", "v21.0"):
            mock.add_callback("POST", f"https://graph.facebook.com/{version}/oauth/access_token",
                              callback=self._token(recorded("facebook_token.json")))
            mock.get(f"https://graph.facebook.com/{version}/me", json=recorded("facebook_me.json"))

    def _token(self, body: dict):
        def answer(request):
            self.token_requests.append(request)
            return 200, {"Content-Type": "application/json"}, json.dumps(body)
        return answer

    def _google_token(self, request):
        self.token_requests.append(request)
        now = int(time.time())
        claims = {**recorded("google_id_token_claims.json"), "aud": CLIENT_ID, "azp": CLIENT_ID,
                  "nonce": self.nonce, "iat": now, "exp": now + 3600}
        claims.pop("at_hash")
        claims.update(self.id_token_claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        id_token = jwt.encode({"alg": "RS256", "kid": "google-1"}, claims, self.id_token_key)
        body = {"access_token": "ya29.a0AfH6SM-test", "expires_in": 3599, "token_type": "Bearer",
                "scope": "openid email profile", "id_token": id_token}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def replace(self, method: str, url: str, **kwargs) -> None:
        self.mock.replace(method, url, **kwargs)


@pytest.fixture
def providers():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield Providers(mock)


def start(client, provider: str, next_url: str | None = PERMALINK, providers=None) -> dict:
    """GET /login/<provider>; return the authorization request's query parameters."""
    query = {"next": next_url} if next_url is not None else {}
    response = client.get(f"/login/{provider}", query_string=query)
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    params["_endpoint"] = f"{location.scheme}://{location.netloc}{location.path}"
    if providers is not None and "nonce" in params:
        providers.nonce = params["nonce"]
    return params


def sign_in(client, provider: str, providers, next_url: str | None = PERMALINK):
    params = start(client, provider, next_url, providers)
    return client.get(f"/auth/{provider}/callback",
                      query_string={"code": "auth-code-1", "state": params["state"]})


def session_data(app, client) -> dict:
    cookie = client.get_cookie("session")
    if cookie is None:
        return {}
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (db.session.scalar(sa.select(sa.func.count(User.id))),
                db.session.scalar(sa.select(sa.func.count(OAuthAccount.id))))


# --- the icons -----------------------------------------------------------------------------------

def test_icons_start_sign_in_and_come_back_to_the_article(auth_client):
    html = auth_client.get(PERMALINK).get_data(as_text=True)
    for name in ("wordpress", "google", "twitter", "facebook"):
        assert f'href="/login/{name}?next={PERMALINK}" id="postas-{name}"' in html
    assert "Fill in your details below or click an icon to log in:" in html
    assert 'src="/static/js/signin.js" defer' in html


def test_anonymous_page_is_the_same_bytes_for_everyone(auth_app):
    first = auth_app.test_client().get(PERMALINK)
    second = auth_app.test_client().get(PERMALINK)
    assert first.get_data() == second.get_data()
    assert "csrf_token" not in first.get_data(as_text=True)


def test_unconfigured_provider_is_a_disabled_icon_and_a_404(client):
    html = client.get(PERMALINK).get_data(as_text=True)
    assert 'title="Google sign-in is not configured on this site"' in html
    assert "/login/google" not in html
    response = client.get("/login/google")
    assert response.status_code == 404
    assert "not configured" in response.get_data(as_text=True)


def test_unknown_provider_is_404(auth_client):
    assert auth_client.get("/login/myspace").status_code == 404
    assert auth_client.get("/auth/myspace/callback?code=x&state=y").status_code == 404


# --- the four round trips ------------------------------------------------------------------------

def test_wordpress_round_trip(auth_app, auth_client, providers):
    params = start(auth_client, "wordpress")
    assert params["_endpoint"] == "https://public-api.wordpress.com/oauth2/authenticate"
    assert params["scope"] == "auth"
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://localhost/auth/wordpress/callback"
    response = auth_client.get("/auth/wordpress/callback",
                               query_string={"code": "c", "state": params["state"]})
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PERMALINK}#respond"
    body = parse_qs(providers.token_requests[-1].body)
    assert body["client_secret"] == [CLIENT_SECRET]  # WordPress.com: the secret in the form body
    assert body["code"] == ["c"]
    with auth_app.app_context():
        account = db.session.scalar(sa.select(OAuthAccount))
        assert (account.provider, account.subject) == ("wordpress", "18342963")
        user = account.user
        assert user.name == "Kamran Yousaf"
        assert user.email == "kamran.yousaf@example.com" and user.email_verified
        assert user.profile_url == "https://gravatar.com/kamranyousaf"
        assert not user.is_admin
        assert user.last_login_at is not None


@pytest.mark.parametrize("issuer", ["https://accounts.google.com", "accounts.google.com"])
def test_google_round_trip_validates_the_id_token(auth_app, auth_client, providers, issuer):
    providers.id_token_claims = {"iss": issuer}
    params = start(auth_client, "google", providers=providers)
    assert params["_endpoint"] == GOOGLE_METADATA["authorization_endpoint"]
    assert params["scope"] == "openid email profile"
    assert params["nonce"] and params["code_challenge_method"] == "S256"
    response = auth_client.get("/auth/google/callback",
                               query_string={"code": "c", "state": params["state"]})
    assert response.status_code == 303, response.get_data(as_text=True)
    token_request = providers.token_requests[-1]
    assert token_request.headers["Authorization"].startswith("Basic ")
    assert "code_verifier" in parse_qs(token_request.body)
    with auth_app.app_context():
        user = db.session.scalar(sa.select(User))
        assert user.accounts[0].subject == "110169484474386276334"
        assert user.email == "ayesha.khan@example.com"
        assert user.is_admin  # a verified email listed in ADMIN_EMAILS


def test_twitter_round_trip_uses_pkce_and_basic_auth(auth_app, auth_client, providers):
    params = start(auth_client, "twitter")
    assert params["_endpoint"] == "https://x.com/i/oauth2/authorize"
    assert params["scope"] == "users.read tweet.read"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    response = auth_client.get("/auth/twitter/callback",
                               query_string={"code": "c", "state": params["state"]})
    assert response.status_code == 303
    token_request = providers.token_requests[-1]
    basic = base64.b64decode(token_request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert basic == f"{CLIENT_ID}:{CLIENT_SECRET}"
    assert "client_secret" not in parse_qs(token_request.body)
    assert len(parse_qs(token_request.body)["code_verifier"][0]) >= 43
    me = [c.request for c in providers.mock.calls if "/2/users/me" in c.request.url][-1]
    assert "user.fields=profile_image_url" in me.url
    with auth_app.app_context():
        user = db.session.scalar(sa.select(User))
        assert (user.name, user.email, user.profile_url) == ("Zara Malik", None,
                                                            "https://x.com/zaramalik")


def test_facebook_round_trip_uses_the_configured_graph_version(database_url, providers):
    app = make_app(database_url, **credentials(FACEBOOK_GRAPH_VERSION="v21.0"))
    reset_database(app)
    client = app.test_client()
    params = start(client, "facebook")
    assert params["_endpoint"] == "https://www.facebook.com/v21.0/dialog/oauth"
    assert params["scope"] == "email public_profile"
    response = client.get("/auth/facebook/callback",
                          query_string={"code": "c", "state": params["state"]})
    assert response.status_code == 303
    me = [c.request for c in providers.mock.calls if c.request.url.startswith(
        "https://graph.facebook.com/v21.0/me")][-1]
    assert parse_qs(urlsplit(me.url).query)["fields"] == ["id,name,email,picture"]
    with app.app_context():
        user = db.session.scalar(sa.select(User))
        assert user.name == "Bilal Ahmed" and user.email is None
        db.session.remove()
        db.engine.dispose()


def test_endpoints_can_be_overridden_with_authlib_config_names(database_url):
    app = make_app(database_url, **credentials(
        WORDPRESS_AUTHORIZE_URL="https://wp.example.test/authorize",
        WORDPRESS_ACCESS_TOKEN_URL="https://wp.example.test/token",
        WORDPRESS_API_BASE_URL="https://wp.example.test/api/",
        GOOGLE_SERVER_METADATA_URL="https://id.example.test/.well-known/openid-configuration"))
    with app.test_request_context():
        wordpress = oauth.client("wordpress")
        assert wordpress.authorize_url == "https://wp.example.test/authorize"
        assert wordpress.access_token_url == "https://wp.example.test/token"
        assert wordpress.api_base_url == "https://wp.example.test/api/"
        assert oauth.client("google")._server_metadata_url.startswith("https://id.example.test/")
        assert oauth.client("twitter").api_base_url == "https://api.x.com/2/"  # untouched: the default


# --- after signing in ----------------------------------------------------------------------------

def test_signed_in_form_says_who_and_hides_the_guest_fields(auth_client, providers):
    sign_in(auth_client, "google", providers)
    response = auth_client.get(PERMALINK)
    html = response.get_data(as_text=True)
    assert "You are commenting using your Google account." in html
    assert 'id="comment-form-logout"' in html and ">Log Out</a> / <a" in html
    assert 'id="comment-form-change"' in html
    assert "Ayesha Khan" in html
    assert "https://lh3.googleusercontent.com/a/ACg8ocK1hQ0W2Zb4u9mTq0fY3wE8rN6sV5xP7cJ2dL1aB0=s96-c" in html
    assert 'id="author"' not in html and 'id="email"' not in html
    assert 'id="comment-form-nascar" hidden' in html
    assert response.headers["Cache-Control"] == "private, no-store"
    state = auth_client.get("/api/session").get_json()["user"]
    assert state == {"name": "Ayesha Khan", "provider": "Google", "is_admin": True,
                     "avatar": "https://lh3.googleusercontent.com/a/ACg8ocK1hQ0W2Zb4u9mTq0fY3wE8rN6sV5xP7cJ2dL1aB0=s96-c"}


def test_a_comment_is_posted_under_the_provider_identity(auth_app, auth_client, providers):
    sign_in(auth_client, "wordpress", providers)
    token = auth_client.get("/api/session").get_json()["csrf_token"]
    response = auth_client.post("/api/posts/pakistan-russia-agree-to-bury-the-hatchet/comments",
                                json={"comment": "Signed in and commenting."},
                                headers={"X-CSRFToken": token})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()["comment"]
    assert body["author"] == "Kamran Yousaf"
    assert body["author_url"] == "https://gravatar.com/kamranyousaf"
    assert body["avatar"].startswith("https://2.gravatar.com/avatar/8d6b2c6f")
    with auth_app.app_context():
        comment = db.session.get(Comment, body["id"])
        assert comment.user.accounts[0].provider == "wordpress"


def test_signing_in_again_finds_the_same_account_and_refreshes_it(auth_app, providers):
    first = auth_app.test_client()
    sign_in(first, "twitter", providers)
    changed = recorded("twitter_users_me.json")
    changed["data"]["name"] = "Zara M."
    providers.replace("GET", "https://api.x.com/2/users/me", json=changed)
    sign_in(auth_app.test_client(), "twitter", providers)
    assert counts(auth_app) == (1, 1)
    with auth_app.app_context():
        assert db.session.scalar(sa.select(User.name)) == "Zara M."


def test_accounts_are_keyed_on_provider_and_subject_never_email(auth_app, providers):
    same_email = recorded("wordpress_me.json") | {"email": "ayesha.khan@example.com"}
    providers.replace("GET", "https://public-api.wordpress.com/rest/v1.1/me", json=same_email)
    sign_in(auth_app.test_client(), "google", providers)
    sign_in(auth_app.test_client(), "wordpress", providers)
    assert counts(auth_app) == (2, 2)  # same verified address, two people until proven otherwise


def test_no_access_token_is_kept_in_the_session(auth_app, auth_client, providers):
    sign_in(auth_client, "google", providers)
    stored = json.dumps(session_data(auth_app, auth_client))
    assert "ya29.a0AfH6SM-test" not in stored and "access_token" not in stored
    assert "id_token" not in stored and "_state_" not in stored
    assert "_user_id" in stored


def test_log_out_is_a_post_with_csrf(auth_client, providers):
    sign_in(auth_client, "google", providers)
    confirm = auth_client.get(f"/logout?next={PERMALINK}")  # a GET only asks
    assert confirm.status_code == 200
    assert "Do you really want to log out?" in confirm.get_data(as_text=True)
    assert auth_client.post("/logout").status_code == 400  # no token: refused
    assert auth_client.get("/api/session").get_json()["user"] is not None
    token = auth_client.get("/api/session").get_json()["csrf_token"]
    response = auth_client.post(f"/logout?next={PERMALINK}", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PERMALINK}#respond"
    assert auth_client.get("/api/session").get_json()["user"] is None
    assert "Fill in your details below" in auth_client.get(PERMALINK).get_data(as_text=True)


# --- next ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("next_url, landing", [
    (PERMALINK, f"{PERMALINK}#respond"),
    (f"{PERMALINK}?replytocom=1", f"{PERMALINK}?replytocom=1#respond"),
    ("https://evil.example/", "/#respond"),
    ("//evil.example/", "/#respond"),
    ("/\\evil.example/", "/#respond"),
    ("javascript:alert(1)", "/#respond"),
    ("", "/#respond"),
    (None, "/#respond"),
    ("/api/openapi.json", "/api/openapi.json"),  # not an article: no comment form to land in
    (f"{PERMALINK}\r\nX-Injected: 1", "/#respond"),  # would split the Location header
    (f"{PERMALINK}\tx", "/#respond"),
    (f"{PERMALINK}?a=\x00", "/#respond"),
    ("/%2e%2e/%2e%2e/api/session", "/#respond"),
    (f"{PERMALINK}#comments", f"{PERMALINK}#respond"),  # the fragment is ours to set
])
def test_next_is_honoured_only_for_same_site_paths(auth_client, providers, next_url, landing):
    response = sign_in(auth_client, "wordpress", providers, next_url=next_url)
    assert response.status_code == 303
    assert response.headers["Location"] == landing


# --- failures ------------------------------------------------------------------------------------

def assert_failed_on_article(app, response, status: int, message: str) -> str:
    html = response.get_data(as_text=True)
    assert response.status_code == status, html[:500]
    assert message in html
    assert 'id="signin-error"' in html
    assert f'data-signin-return="{PERMALINK}"' in html
    assert "Pakistan, Russia agree to bury the" in html  # the article itself
    assert 'id="commentform"' in html
    assert response.headers["Cache-Control"] == "private, no-store"
    assert counts(app) == (0, 0)  # nothing half-created
    return html


def test_cancel_at_the_provider(auth_app, auth_client, providers, caplog):
    params = start(auth_client, "google", providers=providers)
    with caplog.at_level(logging.INFO, logger="app.auth.views"):
        response = auth_client.get("/auth/google/callback", query_string={
            "error": "access_denied", "state": params["state"]})
    assert_failed_on_article(auth_app, response, 200, "Sign-in with Google was cancelled.")
    assert "sign-in with google failed (200): access_denied" in caplog.text
    assert providers.token_requests == []


@pytest.mark.parametrize("query", [
    {"code": "c", "state": "forged-state"},
    {"code": "c"},
], ids=["forged", "missing"])
def test_forged_or_missing_state(auth_app, auth_client, providers, caplog, query):
    start(auth_client, "twitter")
    with caplog.at_level(logging.WARNING, logger="app.auth.views"):
        response = auth_client.get("/auth/twitter/callback", query_string=query)
    assert_failed_on_article(auth_app, response, 400, "Your sign-in expired or could not be checked.")
    assert "missing, forged or expired state" in caplog.text
    assert providers.token_requests == []


def test_expired_state_from_another_browser_session(auth_app, providers):
    params = start(auth_app.test_client(), "twitter")  # the session that started it is gone
    response = auth_app.test_client().get("/auth/twitter/callback",
                                          query_string={"code": "c", "state": params["state"]})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "Your sign-in expired" in html
    assert counts(auth_app) == (0, 0)


def test_a_state_older_than_an_hour_is_refused(auth_app, auth_client, providers):
    params = start(auth_client, "wordpress")
    serializer = auth_app.session_interface.get_signing_serializer(auth_app)
    data = session_data(auth_app, auth_client)
    data[f"_state_wordpress_{params['state']}"]["exp"] = time.time() - 1
    auth_client.set_cookie("session", serializer.dumps(data))
    response = auth_client.get("/auth/wordpress/callback",
                               query_string={"code": "c", "state": params["state"]})
    assert_failed_on_article(auth_app, response, 400, "Your sign-in expired")
    assert providers.token_requests == []


def test_a_state_is_good_for_one_callback_only(auth_app, auth_client, providers):
    params = start(auth_client, "wordpress")
    query = {"code": "c", "state": params["state"]}
    assert auth_client.get("/auth/wordpress/callback", query_string=query).status_code == 303
    assert auth_client.get("/auth/wordpress/callback", query_string=query).status_code == 400


@pytest.mark.parametrize("provider", ["google", "wordpress", "twitter", "facebook"])
@pytest.mark.parametrize("query", [
    {"code": "c", "state": "forged-state"},
    {"code": "c"},
    {"error": "access_denied", "state": "forged-state"},
    {"error": "server_error\n2026-01-01 00:00:00,000 CRITICAL app: forged", "state": "forged"},
], ids=["forged", "missing", "cancel-forged", "error-forged"])
def test_a_callback_without_its_state_asks_the_provider_nothing(auth_app, providers, caplog,
                                                                provider, query):
    """A fresh worker (nothing fetched from the provider yet) gets a callback this browser never
    started: refused before any request to the provider, Google's discovery document included,
    and before the provider's `error` is believed or logged."""
    client = auth_app.test_client()
    client.get(PERMALINK)  # a reader with a session, but no sign-in under way
    with caplog.at_level(logging.INFO, logger="app.auth.views"):
        response = client.get(f"/auth/{provider}/callback", query_string=query)
    html = response.get_data(as_text=True)
    assert response.status_code == 400, html[:300]
    assert "Your sign-in expired" in html and "Please try again." in html
    assert len(providers.mock.calls) == 0, [call.request.url for call in providers.mock.calls]
    assert [r.getMessage() for r in caplog.records if r.name == "app.auth.views"] == [
        f"sign-in with {provider} failed (400): missing, forged or expired state"]
    assert counts(auth_app) == (0, 0)


@pytest.mark.parametrize("provider", ["google", "wordpress"])
def test_the_providers_error_is_logged_on_one_line_cut_and_shown_escaped(
        auth_app, auth_client, providers, caplog, provider):
    params = start(auth_client, provider, providers=providers)
    calls = len(providers.mock.calls)
    error = ("server_error<i>\r\n2026-01-01 00:00:00,000 CRITICAL app: admin password is "
             "hunter2")
    description = "\x1b[31m<script>alert(1)</script>\u202e" + "x" * 5000
    with caplog.at_level(logging.DEBUG):
        response = auth_client.get(f"/auth/{provider}/callback", query_string={
            "error": error, "error_description": description, "state": params["state"]})
    html = response.get_data(as_text=True)
    assert response.status_code == 502
    assert "could not sign you in (server_error&lt;i&gt;\\r\\n2026-01-01 00:00:00,000 CRITICAL" in html
    assert "<script>alert(1)" not in html and "<i>" not in html
    assert len(providers.mock.calls) == calls  # an error callback asks the provider nothing
    records = [r for r in caplog.records if r.name == "app.auth.views"]
    assert [r.levelname for r in records] == ["WARNING"]
    line = records[0].getMessage()
    assert not any(c in line for c in "\r\n\x1b\u202e")
    assert "server_error<i>\\r\\n2026-01-01" in line and "\\x1b[31m" in line
    assert "\\u202e" in line and len(line) < 500 and line.endswith("…")
    assert not any(r.levelname == "CRITICAL" for r in caplog.records)
    # The state served its one callback: coming back with it again is refused.
    again = auth_client.get(f"/auth/{provider}/callback",
                            query_string={"code": "c", "state": params["state"]})
    assert again.status_code == 400


def test_token_endpoint_error(auth_app, auth_client, providers, caplog):
    providers.replace("POST", "https://api.x.com/2/oauth2/token", status=401,
                      json={"error": "invalid_client", "error_description": "Client auth failed"})
    with caplog.at_level(logging.WARNING, logger="app.auth.views"):
        response = sign_in(auth_client, "twitter", providers)
    assert_failed_on_article(auth_app, response, 502, "X (Twitter) could not sign you in (invalid_client).")
    assert "provider error invalid_client: Client auth failed" in caplog.text


@pytest.mark.parametrize("claims, key", [
    ({}, OTHER_KEY),  # signature
    ({"iss": "https://accounts.evil.example"}, GOOGLE_KEY),
    ({"aud": "someone-elses-client"}, GOOGLE_KEY),  # azp still names us: Authlib alone would pass
    ({"nonce": "replayed-nonce"}, GOOGLE_KEY),
    ({"nonce": None}, GOOGLE_KEY),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, GOOGLE_KEY),
], ids=["signature", "issuer", "audience", "nonce", "no-nonce", "expired"])
def test_bad_id_token_is_refused(auth_app, auth_client, providers, caplog, claims, key):
    providers.id_token_claims = claims
    providers.id_token_key = key
    with caplog.at_level(logging.WARNING, logger="app.auth.views"):
        response = sign_in(auth_client, "google", providers)
    assert_failed_on_article(auth_app, response, 400, "We could not verify the sign-in Google sent")
    assert "id_token rejected" in caplog.text


def test_google_without_an_id_token_is_refused(auth_app, auth_client, providers):
    providers.replace("POST", GOOGLE_METADATA["token_endpoint"],
                      json={"access_token": "ya29.x", "token_type": "Bearer", "expires_in": 3599})
    response = sign_in(auth_client, "google", providers)
    assert_failed_on_article(auth_app, response, 400, "We could not verify the sign-in Google sent")


@pytest.mark.parametrize("provider, url, failure, status, message", [
    ("wordpress", "https://public-api.wordpress.com/oauth2/token",
     requests.exceptions.ReadTimeout("read timed out"), 504, "WordPress.com did not answer in time."),
    ("wordpress", "https://public-api.wordpress.com/rest/v1.1/me",
     requests.exceptions.ConnectionError("connection refused"), 502,
     "WordPress.com is not answering properly."),
    ("facebook", "https://graph.facebook.com/v19.0/oauth/access_token", 503, 502,
     "Facebook is not answering properly."),
    ("facebook", "https://graph.facebook.com/v19.0/me", 500, 502,
     "Facebook is not answering properly."),
    ("twitter", "https://api.x.com/2/users/me", {"title": "Unauthorized"}, 502,
     "X (Twitter) sent a profile we could not read."),
    ("google", GOOGLE_METADATA["jwks_uri"], requests.exceptions.ConnectTimeout("slow"), 504,
     "Google did not answer in time."),
    ("google", GOOGLE_METADATA["userinfo_endpoint"], 502, 502, "Google is not answering properly."),
])
def test_provider_unreachable_slow_or_failing(auth_app, auth_client, providers, caplog,
                                              provider, url, failure, status, message):
    method = "POST" if "token" in url else "GET"
    if isinstance(failure, Exception):
        providers.replace(method, url, body=failure)
    elif isinstance(failure, dict):
        providers.replace(method, url, json=failure)
    else:
        providers.replace(method, url, status=failure, body="<html>Server Error</html>")
    with caplog.at_level(logging.WARNING, logger="app.auth.views"):
        response = sign_in(auth_client, provider, providers)
    assert_failed_on_article(auth_app, response, status, message)
    assert f"sign-in with {provider} failed ({status})" in caplog.text


def test_discovery_failure_when_starting(auth_app, auth_client, providers):
    providers.replace("GET", "https://accounts.google.com/.well-known/openid-configuration",
                      body=requests.exceptions.ConnectionError("no route to host"))
    response = auth_client.get("/login/google", query_string={"next": PERMALINK})
    assert_failed_on_article(auth_app, response, 502, "Google is not answering properly.")


def test_failure_with_a_non_article_next_shows_an_error_page(auth_app, auth_client, providers):
    params = start(auth_client, "wordpress", next_url="/api/openapi.json")
    response = auth_client.get("/auth/wordpress/callback",
                               query_string={"error": "access_denied", "state": params["state"]},
                               headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "Sign-in with WordPress.com was cancelled." in response.get_data(as_text=True)


def test_a_failed_sign_in_keeps_the_earlier_identity(auth_app, auth_client, providers):
    sign_in(auth_client, "wordpress", providers)
    params = start(auth_client, "google", providers=providers)
    auth_client.get("/auth/google/callback",
                    query_string={"error": "access_denied", "state": params["state"]})
    assert auth_client.get("/api/session").get_json()["user"]["provider"] == "WordPress.com"


# --- admins --------------------------------------------------------------------------------------

def test_removing_an_email_from_admin_emails_removes_the_rights(database_url, providers):
    app = make_app(database_url, **credentials())  # ADMIN_EMAILS empty now
    reset_database(app)
    with app.app_context():
        user = User(name="Ayesha", email="ayesha.khan@example.com", email_verified=True, is_admin=True)
        user.accounts.append(OAuthAccount(provider="google", subject="110169484474386276334"))
        db.session.add(user)
        db.session.commit()
    sign_in(app.test_client(), "google", providers)
    with app.app_context():
        assert db.session.scalar(sa.select(User.is_admin)) is False
        db.session.remove()
        db.engine.dispose()


def test_create_admin_command(auth_app):
    runner = auth_app.test_cli_runner()
    result = runner.invoke(args=["users", "create-admin", "Editor@Example.com",
                                 "--password", "correct horse battery"])
    assert result.exit_code == 0, result.output
    assert "Created admin editor@example.com" in result.output
    with auth_app.app_context():
        user = db.session.scalar(sa.select(User))
        assert user.is_admin and user.email_verified and user.name == "editor"
        assert user.password_hash.startswith("scrypt:")
        assert "correct horse" not in user.password_hash
        assert user.check_password("correct horse battery")
        assert not user.check_password("wrong password!")

    result = runner.invoke(args=["users", "create-admin", "editor@example.com"],
                           input="a new long password\na new long password\n")
    assert result.exit_code == 0, result.output
    assert "Updated admin" in result.output
    with auth_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1
        assert db.session.scalar(sa.select(User)).check_password("a new long password")


@pytest.mark.parametrize("args, error", [
    (["not-an-email", "--password", "long enough password"], "An email address must have an @-sign."),
    (["editor@example.com", "--password", "short"], "at least 10 characters"),
])
def test_create_admin_refuses_bad_input(auth_app, args, error):
    result = auth_app.test_cli_runner().invoke(args=["users", "create-admin", *args])
    assert result.exit_code != 0
    assert error in result.output
    assert counts(auth_app) == (0, 0)
