"""Signed links and cookies: one helper on itsdangerous, with a purpose salt and a maximum age
per use.

Every token Parley hands out — a moderator's mail links, a subscription's confirm and unsubscribe
links, a like's confirmation, the "your comments" link, the commenter's own cookies, the no-JS
`moderation-hash` — is signed here with SECRET_KEY and the salt of its `Purpose`, so a token made
for one use is worthless for any other. A pure helper at the bottom: it imports nothing from `app`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, Signer, URLSafeSerializer, URLSafeTimedSerializer

INVALID = "This link is not valid. Check that it was copied whole."


class BadLink(Exception):
    """A signed link that is expired, tampered with or malformed; the message says which, in
    words for the person who followed it."""


@dataclass(frozen=True)
class Purpose:
    """One use of signed tokens: its salt, how long a token lasts, and what an expired one says."""

    salt: str
    max_age: int | None  # seconds; None: the token never expires
    expired: str = "This link has expired."
    # False: the token carries no timestamp. Only for tokens that never expire and were already
    # handed out that way (unsubscribe links in mail sent long ago must keep working).
    timed: bool = True

    def _serializer(self) -> URLSafeSerializer:
        kind = URLSafeTimedSerializer if self.timed else URLSafeSerializer
        return kind(current_app.config["SECRET_KEY"], salt=self.salt)


def sign(purpose: Purpose, data: Any) -> str:
    """A URL-safe token carrying *data* (JSON) for *purpose*."""
    return purpose._serializer().dumps(data)


def unsign(purpose: Purpose, token: str, *, max_age: int | None = None) -> Any:
    """The data in *token*, or BadLink. *max_age* overrides the purpose's (a configured age)."""
    age = max_age if max_age is not None else purpose.max_age
    try:
        if purpose.timed and age is not None:
            return purpose._serializer().loads(token, max_age=age)
        return purpose._serializer().loads(token)
    except SignatureExpired:
        raise BadLink(purpose.expired) from None
    except BadSignature:
        raise BadLink(INVALID) from None


def fingerprint(purpose: Purpose, value: str) -> str:
    """A short signature of *value* alone, for a query parameter beside it."""
    return Signer(current_app.config["SECRET_KEY"], salt=purpose.salt).get_signature(
        value).decode("ascii")


def check_fingerprint(purpose: Purpose, value: str, signature: str) -> bool:
    return Signer(current_app.config["SECRET_KEY"], salt=purpose.salt).verify_signature(
        value.encode(), (signature or "").encode())
