"""The sign-in providers, one declarative record each: what readers see (label, icon), where the
provider lives (endpoints, scope, client authentication, PKCE) and how its profile JSON maps onto
one `Profile`. Adding a provider is adding a record to `PROVIDERS`.

Authlib does the protocol (app/auth/oauth.py registers these records with it); this module only
describes the providers, and imports nothing from the app, so models and templates can read it.
Each provider's endpoints can be overridden with Authlib's own config names
(`GOOGLE_SERVER_METADATA_URL`, `TWITTER_AUTHORIZE_URL`, `WORDPRESS_ACCESS_TOKEN_URL`,
`FACEBOOK_API_BASE_URL`, …).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any

from flask import current_app

Claims = Mapping[str, Any]
"""A profile in OpenID Connect's standard claims: `sub`, `name`, `email`, `email_verified`,
`picture`, `profile` (the person's public page)."""


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


ENDPOINTS = ("authorize_url", "access_token_url", "api_base_url", "server_metadata_url")


@dataclass(frozen=True)
class Provider:
    """Everything Parley knows about one sign-in provider.

    Endpoints may hold `{placeholders}`, filled from the setting `<NAME>_<PLACEHOLDER>` (Facebook's
    `{graph_version}` from `FACEBOOK_GRAPH_VERSION`); Authlib's `<NAME>_AUTHORIZE_URL`-style
    settings replace them whole.
    """

    name: str  # URL name (/login/<name>), Authlib's registry name, config prefix in upper case
    label: str  # what a reader calls it
    icon: str  # under static/
    icon_alt: str  # the seed page's alt text
    scope: str
    # The profile mapping: the provider's raw profile JSON (an object) → standard claims.
    profile_claims: Callable[[Mapping[str, Any]], Claims]
    # Where the profile is read, relative to api_base_url, query included. None for an OpenID
    # Connect provider: the validated id_token's claims, completed by the discovery document's
    # userinfo endpoint.
    profile_endpoint: str | None = None
    authorize_url: str | None = None
    access_token_url: str | None = None
    api_base_url: str | None = None
    server_metadata_url: str | None = None  # OpenID Connect discovery
    token_endpoint_auth_method: str = "client_secret_basic"  # or client_secret_post (in the body)
    pkce: bool = False  # send an S256 code challenge and its verifier
    # Google writes its id_tokens' `iss` both with and without `https://`: accept both forms.
    issuer_without_scheme: bool = False

    def __post_init__(self) -> None:
        if not self.server_metadata_url and not (self.authorize_url and self.access_token_url):
            raise ValueError(f"{self.name}: give server_metadata_url or both authorize_url "
                             "and access_token_url")
        if self.profile_endpoint is None and not self.openid:
            raise ValueError(f"{self.name}: a plain OAuth 2.0 provider needs a profile_endpoint")

    @property
    def config_prefix(self) -> str:
        return self.name.upper()

    @property
    def openid(self) -> bool:
        """An OpenID Connect provider: Authlib sends a nonce and checks the id_token."""
        return "openid" in self.scope.split()

    @property
    def enabled(self) -> bool:
        """On when the current app has both credentials (`<NAME>_CLIENT_ID`, `_CLIENT_SECRET`)."""
        config = current_app.config
        prefix = self.config_prefix
        return bool(config.get(f"{prefix}_CLIENT_ID") and config.get(f"{prefix}_CLIENT_SECRET"))

    def client_settings(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """This provider's keyword arguments for Authlib's `register()`, under *config*."""
        client_kwargs: dict[str, Any] = {
            "scope": self.scope,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "default_timeout": float(config["OAUTH_TIMEOUT"]),
        }
        if self.pkce:
            client_kwargs["code_challenge_method"] = "S256"
        settings: dict[str, Any] = {"client_kwargs": client_kwargs}
        for key in ENDPOINTS:
            template = getattr(self, key)
            if template:
                fields = {f for _, f, _, _ in Formatter().parse(template) if f}
                settings[key] = template.format(
                    **{f: config[f"{self.config_prefix}_{f.upper()}"] for f in fields})
        return settings

    def read_profile(self, raw: Any) -> Profile:
        """The `Profile` behind this provider's raw profile JSON.

        :raise ProfileError: not a JSON object, or no id in it.
        """
        if not isinstance(raw, Mapping):
            raise ProfileError(f"{self.name} sent a profile that is not a JSON object")
        claims = self.profile_claims(raw)
        subject = claims.get("sub")
        if isinstance(subject, bool) or text(subject) is None:
            raise ProfileError(f"{self.name} sent a profile without an id")
        return Profile(
            provider=self.name,
            subject=text(subject),
            name=text(claims.get("name")) or f"{self.label} user",
            # The one rule for every provider: an address it does not vouch for is not kept.
            email=text(claims.get("email")) if is_true(claims.get("email_verified")) else None,
            avatar=text(claims.get("picture")),
            profile_url=text(claims.get("profile")),
        )


# --- helpers for the profile mappings ------------------------------------------------------------

def text(value: Any) -> str | None:
    """*value* as stripped text; None for nothing, a blank, an object or a list."""
    if value is None or isinstance(value, (dict, list)):
        return None
    value = str(value).strip()
    return value or None


def first_text(*values: Any) -> str | None:
    """The first of *values* that is text (for a name with fallbacks)."""
    return next((t for t in map(text, values) if t), None)


def is_true(flag: Any) -> bool:
    """True for a provider's "yes, verified" (a JSON true; some send the string "true")."""
    return flag is True or (isinstance(flag, str) and flag.lower() == "true")


# --- the profile mappings ------------------------------------------------------------------------

def wordpress_claims(raw: Mapping[str, Any]) -> Claims:
    """WordPress.com `/rest/v1.1/me`: a numeric `ID`, `display_name`, `avatar_URL`, `profile_URL`."""
    return {
        "sub": raw.get("ID"),
        "name": first_text(raw.get("display_name"), raw.get("username")),  # username: the login
        "email": raw.get("email"),
        "email_verified": is_true(raw.get("email_verified")) or is_true(raw.get("verified")),
        "picture": raw.get("avatar_URL"),
        "profile": raw.get("profile_URL"),
    }


def google_claims(raw: Mapping[str, Any]) -> Claims:
    """Google's OpenID Connect claims (validated id_token merged with userinfo), as they are."""
    return {
        "sub": raw.get("sub"),
        "name": first_text(raw.get("name"), raw.get("given_name")),
        "email": raw.get("email"),
        "email_verified": raw.get("email_verified"),
        "picture": raw.get("picture"),
        # no `profile`: Google gives no public profile page
    }


def twitter_claims(raw: Mapping[str, Any]) -> Claims:
    """X `/2/users/me?user.fields=profile_image_url`: everything inside `data`."""
    data = raw.get("data")
    data = data if isinstance(data, Mapping) else {}
    username = text(data.get("username"))
    return {
        "sub": data.get("id"),
        "name": first_text(data.get("name"), f"@{username}" if username else "X user"),
        # X sends no email unless the app has the users.email scope; then it is confirmed.
        "email": data.get("confirmed_email"),
        "email_verified": True,
        "picture": data.get("profile_image_url"),
        "profile": f"https://x.com/{username}" if username else None,
    }


def facebook_claims(raw: Mapping[str, Any]) -> Claims:
    """Facebook Graph `/me?fields=id,name,email,picture`: an app-scoped `id`."""
    picture = raw.get("picture")
    picture = picture.get("data") if isinstance(picture, Mapping) else None
    silhouette = not isinstance(picture, Mapping) or picture.get("is_silhouette")
    return {
        "sub": raw.get("id"),
        "name": raw.get("name"),
        "email": raw.get("email"),
        # The Graph API says nothing about whether `email` was confirmed, so it is not trusted
        # (django-allauth's VERIFIED_EMAIL defaults to False for the same reason).
        "email_verified": False,
        "picture": None if silhouette else picture.get("url"),  # the grey default: none
        # no `profile`: `link` needs the user_link permission, which we do not ask for
    }


# --- the providers, in the order of the icons ----------------------------------------------------

PROVIDERS: tuple[Provider, ...] = (
    Provider(
        name="wordpress", label="WordPress.com",
        icon="img/wordpress.svg", icon_alt="WordPress.com Logo",
        authorize_url="https://public-api.wordpress.com/oauth2/authenticate",
        access_token_url="https://public-api.wordpress.com/oauth2/token",
        api_base_url="https://public-api.wordpress.com/rest/v1.1/",
        scope="auth",
        token_endpoint_auth_method="client_secret_post",
        profile_endpoint="me",
        profile_claims=wordpress_claims,
    ),
    Provider(
        name="google", label="Google",
        icon="img/google.svg", icon_alt="Google photo",
        server_metadata_url="https://accounts.google.com/.well-known/openid-configuration",
        scope="openid email profile",
        pkce=True,  # as well as the secret: Google supports it and strict servers require it
        issuer_without_scheme=True,
        profile_claims=google_claims,
    ),
    Provider(
        name="twitter", label="X (Twitter)",
        icon="img/twitter.svg", icon_alt="Twitter picture",
        authorize_url="https://x.com/i/oauth2/authorize",
        access_token_url="https://api.x.com/2/oauth2/token",
        api_base_url="https://api.x.com/2/",
        scope="users.read tweet.read",
        # X requires PKCE and HTTP Basic client authentication for confidential clients.
        pkce=True,
        token_endpoint_auth_method="client_secret_basic",
        profile_endpoint="users/me?user.fields=profile_image_url",
        profile_claims=twitter_claims,
    ),
    Provider(
        name="facebook", label="Facebook",
        icon="img/facebook.svg", icon_alt="Facebook photo",
        # Graph versions are retired on a schedule: FACEBOOK_GRAPH_VERSION picks one.
        authorize_url="https://www.facebook.com/{graph_version}/dialog/oauth",
        access_token_url="https://graph.facebook.com/{graph_version}/oauth/access_token",
        api_base_url="https://graph.facebook.com/{graph_version}/",
        scope="email public_profile",
        token_endpoint_auth_method="client_secret_post",
        profile_endpoint="me?fields=id,name,email,picture",
        profile_claims=facebook_claims,
    ),
)
PROVIDERS_BY_NAME: dict[str, Provider] = {p.name: p for p in PROVIDERS}
