"""Talking to the sign-in providers through Authlib: each app's own registry of the records in
app/auth/providers.py, and reading who signed in once the code is exchanged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import Flask, current_app

from app.auth.providers import PROVIDERS, ProfileError, Provider


def init_app(app: Flask) -> None:
    """Give *app* its own Authlib registry with every provider registered.

    Authlib's registry caches each client built from the config of the app it was bound to, and
    holds one `.app`; a registry per app keeps apps with different providers (tests, several
    sites in one process) from reading each other's endpoints. `overwrite=True` lets the
    `<NAME>_AUTHORIZE_URL`-style settings replace the real providers' endpoints.
    """
    registry = OAuth()
    registry.init_app(app)  # stores itself in app.extensions
    for provider in PROVIDERS:
        registry.register(provider.name, overwrite=True, **provider.client_settings(app.config))


def client(name: str) -> FlaskOAuth2App:
    """The current app's Authlib client for provider *name*."""
    registry: OAuth = current_app.extensions["authlib.integrations.flask_client"]
    return registry.create_client(name)


def id_token_claims_options(provider: Provider, oauth_client: FlaskOAuth2App) -> dict[str, Any]:
    """How to check an OpenID provider's id_token: its issuer and our audience, exactly (Authlib
    alone accepts a wrong `aud` when `azp` names us)."""
    issuer = oauth_client.load_server_metadata().get("issuer") or ""
    issuers = {issuer}
    if provider.issuer_without_scheme:
        issuers.add(issuer.removeprefix("https://"))
    return {"iss": {"essential": True, "values": sorted(issuers - {""})},
            "aud": {"essential": True, "value": oauth_client.client_id}}


def fetch_raw_profile(provider: Provider, oauth_client: FlaskOAuth2App,
                      token: Mapping[str, Any]) -> Any:
    """Ask *provider* who the token belongs to; return its JSON as it came.

    :raise requests.RequestException: the provider failed or did not answer.
    :raise ValueError: the answer was not JSON.
    """
    if not provider.openid:
        response = oauth_client.get(provider.profile_endpoint, token=dict(token))
        response.raise_for_status()
        return response.json()
    # The validated id_token's claims, completed by userinfo (some servers put only `sub` in the
    # id_token). OpenID Connect requires userinfo's `sub` to be the id_token's.
    claims = dict(token.get("userinfo") or {})
    endpoint = (provider.profile_endpoint
                or oauth_client.load_server_metadata().get("userinfo_endpoint"))
    if endpoint:
        response = oauth_client.get(endpoint, token=dict(token))
        response.raise_for_status()
        info = response.json()
        if not isinstance(info, Mapping):
            raise ProfileError(f"{provider.name} sent a profile that is not a JSON object")
        if claims.get("sub") and str(info.get("sub")) != str(claims["sub"]):
            raise ProfileError(f"{provider.name}'s userinfo is about someone else than its id_token")
        claims = {**info, **claims}
    return claims
