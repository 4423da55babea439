"""Bans by email, social account, IP address or network, each with an optional expiry."""

from __future__ import annotations

import ipaddress
from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import User, utcnow
from app.moderation.models import Ban, BanKind


class InvalidBan(ValueError):
    """A ban value that cannot be used; the message says why."""


def normalise(kind: BanKind, value: str) -> str:
    """The stored form of a ban value: lower-case email, "provider:subject", a network's CIDR."""
    value = value.strip()
    if not value:
        raise InvalidBan("Enter what to ban.")
    if kind is BanKind.EMAIL:
        if "@" not in value or any(c.isspace() for c in value):
            raise InvalidBan("Enter an email address, such as someone@example.com.")
        return value.lower()
    if kind is BanKind.ACCOUNT:
        provider, _, subject = value.partition(":")
        if not provider or not subject:
            raise InvalidBan("Enter an account as provider:subject, such as google:1234567890.")
        return f"{provider.strip().lower()}:{subject.strip()}"
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidBan("Enter an IP address or range, such as 203.0.113.7 or 203.0.113.0/24.") \
            from None
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def network_of(ip: str) -> str:
    """The range WordPress moderators ban to catch a neighbour: IPv4 /24, IPv6 /48."""
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def add(kind: BanKind, value: str, *, reason: str = "", expires_at: datetime | None = None,
        by: User | None = None) -> Ban:
    """Create a ban in the current transaction (raises InvalidBan)."""
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidBan("The expiry must be in the future.")
    ban = Ban(kind=kind, value=normalise(kind, value), reason=reason.strip()[:500],
              expires_at=expires_at, created_by_id=by.id if by is not None else None)
    db.session.add(ban)
    db.session.flush()
    return ban


def find(email: str, user: User | None, ip: str) -> list[Ban]:
    """The bans in force that catch this author."""
    emails = {e.lower() for e in (email, user.email if user is not None else "") if e}
    accounts = {f"{a.provider}:{a.subject}" for a in user.accounts} if user is not None else set()
    if not (emails or accounts or ip):
        return []
    found = db.session.scalars(_CATCHING, {"now": utcnow(), "emails": list(emails),
                                           "accounts": list(accounts), "with_ip": bool(ip)}).all()
    return [b for b in found if b.kind is not BanKind.IP or b.matches_ip(ip)]


# Every new comment asks this, so it is built once. IP bans are all read (a ban may be a
# network) and matched in Python, above.
_CATCHING = Ban.active(sa.bindparam("now")).where(sa.or_(
    sa.and_(Ban.kind == BanKind.EMAIL, Ban.value.in_(sa.bindparam("emails", expanding=True))),
    sa.and_(Ban.kind == BanKind.ACCOUNT, Ban.value.in_(sa.bindparam("accounts", expanding=True))),
    sa.and_(Ban.kind == BanKind.IP, sa.bindparam("with_ip", type_=sa.Boolean)),
))
