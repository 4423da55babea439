"""Bans by email, social account, IP address or network, each with an optional expiry."""

from __future__ import annotations

import functools
import ipaddress
from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.limits import without_tag
from app.models import User, utcnow
from app.moderation.models import Ban, BanKind
from app.settings import get_setting


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
    """The bans in force that catch this author: by either email (and, with the
    `ban_plus_addresses` setting, either one without its +tag), account or IP."""
    given = {e.lower() for e in (email, user.email if user is not None else "") if e}
    if given and get_setting("ban_plus_addresses"):
        given |= {without_tag(e) for e in given}
    emails = sorted(given)
    accounts = sorted({f"{a.provider}:{a.subject}" for a in user.accounts}) if user else []
    if not (emails or accounts or ip):
        return []
    values = {"now": utcnow(), "with_ip": bool(ip)}
    values.update((f"email_{i}", e) for i, e in enumerate(emails))
    values.update((f"account_{i}", a) for i, a in enumerate(accounts))
    probe = _catching(len(emails), len(accounts))
    ids = db.session.connection().execute(probe, values).scalars().all()
    if not ids:
        return []  # nearly every comment: one plain lookup, no Ban objects built
    found = db.session.scalars(Ban.active(values["now"]).where(Ban.id.in_(ids))).all()
    return [b for b in found if b.kind is not BanKind.IP or b.matches_ip(ip)]


@functools.cache
def _catching(emails: int, accounts: int) -> sa.Select:
    """The ids of the bans in force that could catch an author with this many email addresses
    and accounts. Every new comment asks, so each shape is built once, with one plain parameter
    per value (an expanding IN is rendered again on every run). IP bans are all read (a ban may be
    a network) and matched in Python, above."""
    def one_of(kind: BanKind, name: str, count: int):
        values = [sa.bindparam(f"{name}_{i}", type_=sa.String) for i in range(count)]
        return sa.and_(Ban.kind == kind, Ban.value.in_(values)) if values else sa.false()

    return Ban.active(sa.bindparam("now")).with_only_columns(Ban.id).where(sa.or_(
        one_of(BanKind.EMAIL, "email", emails),
        one_of(BanKind.ACCOUNT, "account", accounts),
        sa.and_(Ban.kind == BanKind.IP, sa.bindparam("with_ip", type_=sa.Boolean))))
