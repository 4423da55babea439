"""Social sign-in: start at /login/<provider>, come back to /auth/<provider>/callback, POST /logout.

Every way a sign-in can fail ends on the article the reader came from, with a message in the
comment form and the right status code; the draft they typed is kept by static/js/signin.js.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import FlaskOAuth2App
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from joserfc.errors import JoseError
from werkzeug.exceptions import HTTPException

from app.auth import accounts, oauth
from app.auth.providers import PROVIDERS_BY_NAME, Profile, ProfileError, Provider
from app.blog.views import render_post
from app.errors import error_response
from app.extensions import db
from app.models import Post
from app.models import commenter_avatar as commenter_avatar_of
from app.urls import same_site_path

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

NEXT_KEY = "parley_signin_next"  # where to land after the round trip; a same-site path


@dataclass
class SignInFailed(Exception):
    """Why a sign-in did not finish: what the reader is told, the status, what the log says."""

    status: int
    message: str
    reason: str


def _provider_or_404(name: str) -> Provider:
    provider = PROVIDERS_BY_NAME.get(name)
    if provider is None:
        abort(404)
    if not provider.enabled:
        abort(404, f"Signing in with {provider.label} is not configured on this site.")
    return provider


def _callback_url(provider: str) -> str:
    """The redirect URI registered at the provider: SITE_URL's when set (behind a proxy)."""
    path = url_for("auth.callback", provider=provider)
    site = current_app.config.get("SITE_URL")
    return f"{site}{path}" if site else url_for("auth.callback", provider=provider, _external=True)


@bp.get("/login/<provider>")
def login(provider: str):
    """Send the reader to the provider to sign in, remembering the article to come back to."""
    info = _provider_or_404(provider)
    next_url = same_site_path(request.args.get("next")) or url_for("blog.index")
    session[NEXT_KEY] = next_url
    try:
        # Authlib keeps state, nonce and the PKCE verifier in the session; no token ever is.
        return oauth.client(provider).authorize_redirect(_callback_url(provider))
    except requests.RequestException as exc:  # Google's discovery document did not load
        return _failed(info, next_url, _network_failure(info, exc))


@bp.get("/auth/<provider>/callback")
def callback(provider: str):
    """Finish signing in: exchange the code, read the profile, sign the reader in, go back."""
    info = _provider_or_404(provider)
    next_url = same_site_path(session.pop(NEXT_KEY, None)) or url_for("blog.index")
    try:
        profile = _complete(info)
    except SignInFailed as failure:
        return _failed(info, next_url, failure)
    user, created = accounts.sign_in(profile)
    login_user(user, remember=True)
    log.info("sign-in: user %s via %s (%s account)", user.id, provider, "new" if created else "known")
    return redirect(_landing(next_url), 303)


def _complete(info: Provider) -> Profile:
    """Run Authlib's half of the callback and the provider's profile mapping; raise SignInFailed.

    The state is checked first, before the provider's `error` is read and before any request to
    the provider (Authlib reads `error` before the state, and Google's discovery document is
    fetched before Authlib looks at the state at all): a forged callback costs the provider
    nothing and writes nothing of the forger's into the log. A state serves one callback only,
    whatever its outcome.
    """
    oauth_client = oauth.client(info.name)
    state = request.args.get("state")
    state_key = f"_state_{info.name}_{state}"
    try:
        _check_state(oauth_client, state)
        kwargs = {}
        if info.openid:
            kwargs["claims_options"] = oauth.id_token_claims_options(info, oauth_client)
        token = oauth_client.authorize_access_token(**kwargs)
        if info.openid and not token.get("userinfo"):
            raise SignInFailed(400, _UNVERIFIED.format(label=info.label), "no id_token")
        return info.read_profile(oauth.fetch_raw_profile(info, oauth_client, token))
    except MismatchingStateError:
        raise SignInFailed(400, "Your sign-in expired or could not be checked. Please try again.",
                           "missing, forged or expired state") from None
    except OAuthError as exc:
        if exc.error == "access_denied":
            raise SignInFailed(200, f"Sign-in with {info.label} was cancelled.",
                               "access_denied (cancelled at the provider)") from None
        # Both come from the callback's query or the provider's answer: anyone's text.
        error, description = _printable(exc.error, 64), _printable(exc.description, 200)
        raise SignInFailed(
            502, f"{info.label} could not sign you in ({error}). Please try again later, "
                 "or fill in your details to comment as a guest.",
            f"provider error {error}: {description}".strip()) from None
    except JoseError as exc:
        raise SignInFailed(400, _UNVERIFIED.format(label=info.label),
                           f"id_token rejected: {type(exc).__name__}: {exc}") from None
    except requests.RequestException as exc:
        raise _network_failure(info, exc) from None
    except (ProfileError, ValueError, KeyError, TypeError) as exc:
        raise SignInFailed(502, f"{info.label} sent a profile we could not read. Please try "
                                "again later, or comment as a guest.",
                           f"unusable response: {type(exc).__name__}: {exc}") from None
    finally:
        session.pop(state_key, None)  # Authlib drops it on success only


def _check_state(oauth_client: FlaskOAuth2App, state: str | None) -> None:
    """Refuse a callback whose *state* this browser's session does not hold, or holds past its
    expiry (Authlib stamps one, an hour, but only uses it to tidy up).

    :raise MismatchingStateError: missing, forged, from another browser session, or expired.
    """
    stored = session.get(f"_state_{oauth_client.name}_{state}") if state else None
    if not isinstance(stored, dict) or stored.get("exp", 0) < time.time() \
            or not oauth_client.framework.get_state_data(session, state):
        raise MismatchingStateError()


def _printable(text: object, limit: int) -> str:
    """*text* cut to *limit* characters, with every character that is not printable (a CR or LF
    that would start a forged log line, an ANSI escape, a bidi override) written as its Python
    escape (`\\n`, `\\x1b`, `\\u202e`)."""
    text = "" if text is None else str(text)
    cut = text[:limit]
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                    for c in cut)
    return shown + ("…" if len(text) > limit else "")


_UNVERIFIED = ("We could not verify the sign-in {label} sent, so you are not signed in. "
               "Please try again.")


def _network_failure(info: Provider, exc: requests.RequestException) -> SignInFailed:
    if isinstance(exc, requests.Timeout):
        return SignInFailed(504, f"{info.label} did not answer in time. Please try again later, "
                                 "or comment as a guest.", f"timeout: {exc}")
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        detail = f"HTTP {exc.response.status_code} from {exc.response.url}"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return SignInFailed(502, f"{info.label} is not answering properly. Please try again later, "
                             "or comment as a guest.", f"provider unreachable or failing: {detail}")


def _failed(info: Provider, next_url: str, failure: SignInFailed) -> Response:
    """Log *failure* and show the article the reader came from with the message, in place."""
    log_at = logging.INFO if failure.status == 200 else logging.WARNING
    log.log(log_at, "sign-in with %s failed (%s): %s", info.name, failure.status,
            _printable(failure.reason, 1000))
    db.session.rollback()  # nothing half-made survives
    post = _post_at(next_url)
    if post is None:
        response = error_response(failure.status, failure.message)
    else:
        response = render_post(post, status=failure.status, signin_error=failure.message,
                               signin_return=next_url)
    # This page is about one reader's sign-in: never cached, never indexed.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _post_at(path: str) -> Post | None:
    """The post an article path shows (its permalink, or the front page's latest post)."""
    adapter = current_app.url_map.bind(request.host)
    try:
        endpoint, args = adapter.match(urlsplit(path).path, method="GET")
    except HTTPException:
        return None
    if endpoint == "blog.permalink":
        return Post.by_permalink(**args)
    if endpoint == "blog.index":
        return db.session.scalar(Post.latest().limit(1))
    return None


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """POST: sign out and go back; GET: ask first (a GET never signs anyone out)."""
    next_url = same_site_path(request.values.get("next")) or url_for("blog.index")
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(next_url, 303)
        response = current_app.make_response(
            render_template("auth/logout.html", next_url=next_url))
        response.headers["Cache-Control"] = "private, no-store"
        return response
    if current_user.is_authenticated:
        log.info("sign-out: user %s", current_user.id)
    logout_user()
    return redirect(_landing(next_url), 303)


def _landing(next_url: str) -> str:
    """Back to *next_url*; on an article, straight to its comment form."""
    return f"{next_url}#respond" if _post_at(next_url) is not None else next_url


@bp.app_template_global()
def commenter_avatar(user) -> str:
    """The signed-in reader's picture: their provider's, else their Gravatar."""
    return commenter_avatar_of(user.avatar_url, user.email or "")
