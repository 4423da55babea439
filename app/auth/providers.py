"""The four sign-in providers: how to reach each one, and one small adapter per provider that maps
its raw profile onto one `Profile`.

Authlib does the protocol (state, nonce, PKCE, token exchange, id_token validation); this module
only says where each provider lives and what its profile looks like. Each provider's endpoints can
be overridden with Authlib's own config names (`GOOGLE_SERVER_METADATA_URL`,
`TWITTER_AUTHORIZE_URL`, `WORDPRESS_ACCESS_TOKEN_URL`, `FACEBOOK_API_BASE_URL`, …).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import Flask, current_app, url_for

# How long to wait for a provider before telling the reader it is not answering (seconds).
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Profile:
    """Who signed in, the same shape whichever provider said so."""

    provider: str
    subject: str  # the provider's stable id for this person: accounts are keyed on it
    name: str
    email: str | None = None  # only ever a *verified* address
    avatar: str | None = None
    profile_url: str | None = None


class ProfileError(ValueError):
    """A provider's profile that cannot be used (no id, not a JSON object)."""


@dataclass(frozen=True)
class ProviderInfo:
    name: str  # URL name: /login/<name>; Authlib's registry name; config prefix in upper case
    label: str  # what a reader calls it
    icon_alt: str  # the seed page's alt text

    @property
    def config_prefix(self) -> str:
        return self.name.upper()

    @property
    def enabled(self) -> bool:
        config = current_app.config
        prefix = self.config_prefix
        return bool(config.get(f"{prefix}_CLIENT_ID") and config.get(f"{prefix}_CLIENT_SECRET"))

    def login_url(self, next_url: str | None = None) -> str:
        """Where the icon points: start signing in, then come back to *next_url*."""
        return url_for("auth.login", provider=self.name, next=next_url or None)


PROVIDERS: tuple[ProviderInfo, ...] = (
    ProviderInfo("wordpress", "WordPress.com", "WordPress.com Logo"),
    ProviderInfo("google", "Google", "Google photo"),
    ProviderInfo("twitter", "X (Twitter)", "Twitter picture"),
    ProviderInfo("facebook", "Facebook", "Facebook photo"),
)
PROVIDERS_BY_NAME = {p.name: p for p in PROVIDERS}


# --- registration ------------------------------------------------------------------------------

def _settings(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The real provider's endpoints and client options; app config overrides the endpoints."""
    timeout = float(config.get("OAUTH_TIMEOUT") or DEFAULT_TIMEOUT)
    if name == "wordpress":
        return {
            "authorize_url": "https://public-api.wordpress.com/oauth2/authenticate",
            "access_token_url": "https://public-api.wordpress.com/oauth2/token",
            "api_base_url": "https://public-api.wordpress.com/rest/v1.1/",
            "client_kwargs": {"scope": "auth", "token_endpoint_auth_method": "client_secret_post",
                              "default_timeout": timeout},
        }
    if name == "google":
        return {
            "server_metadata_url": "https://accounts.google.com/.well-known/openid-configuration",
            # PKCE as well as the secret: Google supports it and strict servers require it.
            "client_kwargs": {"scope": "openid email profile", "code_challenge_method": "S256",
                              "default_timeout": timeout},
        }
    if name == "twitter":
        return {
            "authorize_url": "https://x.com/i/oauth2/authorize",
            "access_token_url": "https://api.x.com/2/oauth2/token",
            "api_base_url": "https://api.x.com/2/",
            # X requires PKCE and HTTP Basic client authentication for confidential clients.
            "client_kwargs": {"scope": "users.read tweet.read", "code_challenge_method": "S256",
                              "token_endpoint_auth_method": "client_secret_basic",
                              "default_timeout": timeout},
        }
    if name == "facebook":
        version = config.get("FACEBOOK_GRAPH_VERSION") or "v19.0"
        return {
            "authorize_url": f"https://www.facebook.com/{version}/dialog/oauth",
            "access_token_url": f"https://graph.facebook.com/{version}/oauth/access_token",
            "api_base_url": f"https://graph.facebook.com/{version}/",
            "client_kwargs": {"scope": "email public_profile",
                              "token_endpoint_auth_method": "client_secret_post",
                              "default_timeout": timeout},
        }
    raise KeyError(name)


def init_app(app: Flask) -> None:
    """Give *app* its own Authlib registry with the four providers registered.

    Authlib's registry caches each client built from the config of the app it was bound to, and
    holds one `.app`; a registry per app keeps apps with different providers (tests, several
    sites in one process) from reading each other's endpoints. `overwrite=True` lets the
    `<NAME>_AUTHORIZE_URL`-style settings replace the real providers' endpoints.
    """
    registry = OAuth()
    registry.init_app(app)  # stores itself in app.extensions
    for info in PROVIDERS:
        registry.register(info.name, overwrite=True, **_settings(info.name, app.config))


def client(name: str) -> FlaskOAuth2App:
    """The current app's Authlib client for provider *name*."""
    registry: OAuth = current_app.extensions["authlib.integrations.flask_client"]
    return registry.create_client(name)


# --- profiles ----------------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    value = str(value).strip()
    return value or None


def _verified(flag: Any) -> bool:
    """True for a provider's "yes, verified" (a JSON true; some send the string "true")."""
    return flag is True or (isinstance(flag, str) and flag.lower() == "true")


def _subject(value: Any, provider: str) -> str:
    subject = _text(value)
    if subject is None or isinstance(value, bool):
        raise ProfileError(f"{provider} sent a profile without an id")
    return subject


def _object(raw: Any, provider: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{provider} sent a profile that is not a JSON object")
    return raw


def wordpress_profile(raw: Any) -> Profile:
    """WordPress.com `/rest/v1.1/me`: a numeric `ID`, `display_name`, `avatar_URL`, `profile_URL`."""
    raw = _object(raw, "wordpress")
    verified = _verified(raw.get("email_verified")) or _verified(raw.get("verified"))
    return Profile(
        provider="wordpress",
        subject=_subject(raw.get("ID"), "wordpress"),
        name=_text(raw.get("display_name")) or _text(raw.get("username")) or "WordPress.com user",
        email=_text(raw.get("email")) if verified else None,
        avatar=_text(raw.get("avatar_URL")),
        profile_url=_text(raw.get("profile_URL")),
    )


def google_profile(raw: Any) -> Profile:
    """Google's OpenID Connect claims (validated id_token merged with userinfo)."""
    raw = _object(raw, "google")
    return Profile(
        provider="google",
        subject=_subject(raw.get("sub"), "google"),
        name=_text(raw.get("name")) or _text(raw.get("given_name")) or "Google user",
        email=_text(raw.get("email")) if _verified(raw.get("email_verified")) else None,
        avatar=_text(raw.get("picture")),
        profile_url=None,  # Google gives no public profile page
    )


def twitter_profile(raw: Any) -> Profile:
    """X `/2/users/me?user.fields=profile_image_url`: everything inside `data`."""
    data = _object(_object(raw, "twitter").get("data"), "twitter")
    username = _text(data.get("username"))
    return Profile(
        provider="twitter",
        subject=_subject(data.get("id"), "twitter"),
        name=_text(data.get("name")) or (f"@{username}" if username else "X user"),
        # X sends no email unless the app has the users.email scope; then it is confirmed.
        email=_text(data.get("confirmed_email")),
        avatar=_text(data.get("profile_image_url")),
        profile_url=f"https://x.com/{username}" if username else None,
    )


def facebook_profile(raw: Any) -> Profile:
    """Facebook Graph `/me?fields=id,name,email,picture`: an app-scoped `id`."""
    raw = _object(raw, "facebook")
    picture = raw.get("picture")
    picture_data = picture.get("data") if isinstance(picture, Mapping) else None
    avatar = None
    if isinstance(picture_data, Mapping) and not picture_data.get("is_silhouette"):
        avatar = _text(picture_data.get("url"))
    return Profile(
        provider="facebook",
        subject=_subject(raw.get("id"), "facebook"),
        name=_text(raw.get("name")) or "Facebook user",
        # The Graph API says nothing about whether `email` was confirmed, so it is not trusted
        # (django-allauth's VERIFIED_EMAIL defaults to False for the same reason).
        email=None,
        avatar=avatar,
        profile_url=None,  # `link` needs the user_link permission, which we do not ask for
    )


ADAPTERS: dict[str, Callable[[Any], Profile]] = {
    "wordpress": wordpress_profile,
    "google": google_profile,
    "twitter": twitter_profile,
    "facebook": facebook_profile,
}


def fetch_raw_profile(name: str, oauth_client: FlaskOAuth2App, token: Mapping[str, Any]) -> Any:
    """Ask provider *name* who the token belongs to; return its JSON as it came.

    :raise requests.RequestException: the provider failed or did not answer.
    :raise ValueError: the answer was not JSON.
    """
    if name == "google":
        # The validated id_token's claims, completed by userinfo (some servers put only `sub`
        # in the id_token). OpenID Connect requires userinfo's `sub` to be the id_token's.
        claims = dict(token.get("userinfo") or {})
        endpoint = oauth_client.load_server_metadata().get("userinfo_endpoint")
        if endpoint:
            response = oauth_client.get(endpoint, token=dict(token))
            response.raise_for_status()
            info = _object(response.json(), "google")
            if claims.get("sub") and str(info.get("sub")) != str(claims["sub"]):
                raise ProfileError("google's userinfo is about someone else than its id_token")
            claims = {**info, **claims}
        return claims
    paths = {
        "wordpress": ("me", None),
        "twitter": ("users/me", {"user.fields": "profile_image_url"}),
        "facebook": ("me", {"fields": "id,name,email,picture"}),
    }
    path, params = paths[name]
    response = oauth_client.get(path, token=dict(token), params=params)
    response.raise_for_status()
    return response.json()
