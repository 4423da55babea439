"""People and their sign-in accounts: a provider's Profile becomes a User, a password makes an admin."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app

from app.auth.providers import Profile
from app.comments.content import http_url
from app.extensions import db
from app.models import OAuthAccount, User, utcnow

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
URL_LENGTH = 500  # the users table's avatar_url and profile_url columns


def is_admin_email(email: str | None) -> bool:
    return bool(email) and email.strip().lower() in current_app.config.get("ADMIN_EMAILS", [])


def _checked_url(url: str | None) -> str | None:
    """A provider's picture or profile address as a page may use it: http(s) only, and whole (an
    address cut to fit the column would point somewhere else), else None."""
    url = http_url(url)
    return url if url and len(url) <= URL_LENGTH else None


def _apply(user: User, profile: Profile) -> None:
    """Refresh what the provider says about *user*: people change names and pictures."""
    user.name = profile.name[:245]
    user.avatar_url = _checked_url(profile.avatar)
    user.profile_url = _checked_url(profile.profile_url)
    if profile.email:
        user.email = profile.email[:254]
        user.email_verified = True
    # A social account is an admin exactly while its verified email is listed in ADMIN_EMAILS,
    # so taking an address off the list takes the rights away at the next sign-in.
    user.is_admin = is_admin_email(profile.email) if profile.email else False
    user.last_login_at = utcnow()


def sign_in(profile: Profile) -> tuple[User, bool]:
    """Find or create the user behind (provider, subject) and refresh it; commit; return (user, new).

    Accounts are keyed on (provider, subject), never on email: two providers that report the same
    address are two accounts, as an address is not proof that the person is the same.
    """
    query = sa.select(OAuthAccount).where(
        OAuthAccount.provider == profile.provider, OAuthAccount.subject == profile.subject
    )
    account = db.session.scalar(query)
    created = account is None
    if account is None:
        user = User(name=profile.name[:245])
        account = OAuthAccount(provider=profile.provider, subject=profile.subject[:255], user=user)
        db.session.add_all([user, account])
    _apply(account.user, profile)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        # The same person finished signing in twice at once: use the account the other made.
        db.session.rollback()
        account = db.session.scalar(query)
        if account is None:
            raise
        created = False
        _apply(account.user, profile)
        db.session.commit()
    return account.user, created


def create_local_admin(email: str, password: str, name: str | None = None) -> tuple[User, bool]:
    """Create (or update) the password admin for *email*, for sites that use no provider."""
    email = email.strip().lower()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    user = db.session.scalar(
        sa.select(User).where(sa.func.lower(User.email) == email, User.password_hash.is_not(None))
        .order_by(User.id).limit(1)
    )
    created = user is None
    if user is None:
        user = User(name=name or email.split("@", 1)[0], email=email)
        db.session.add(user)
    elif name:
        user.name = name
    user.email_verified = True
    user.is_admin = True
    user.set_password(password)
    db.session.commit()
    return user, created

