"""Moderation records: bans, the audit log and the revisions an edit leaves behind."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.extensions import db
from app.models import Comment, User, UTCDateTime, utcnow


def _enum(cls: type[enum.Enum], name: str) -> sa.Enum:
    # Stored as short strings: the lists grow, and a VARCHAR needs no ALTER TYPE to grow with them.
    return sa.Enum(cls, name=name, native_enum=False, length=32,
                   values_callable=lambda e: [m.value for m in e])


class BanKind(enum.Enum):
    EMAIL = "email"
    ACCOUNT = "account"  # a social sign-in: "provider:subject"
    IP = "ip"  # an address or a network: "203.0.113.7", "203.0.113.0/24", "2001:db8:1::/48"


class Ban(db.Model):
    """An author whose comments are refused or silently held, until *expires_at* (or for ever)."""

    __tablename__ = "bans"
    __table_args__ = (sa.Index("ix_bans_kind_value", "kind", "value"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[BanKind] = so.mapped_column(_enum(BanKind, "ban_kind"))
    value: so.Mapped[str] = so.mapped_column(sa.String(254))
    reason: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    expires_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))

    created_by: so.Mapped[User | None] = so.relationship()

    def __repr__(self) -> str:
        return f"<Ban {self.kind.value} {self.value}>"

    @staticmethod
    def active(now: datetime | sa.BindParameter | None = None) -> sa.Select:
        """The bans in force at *now* (a time, or a bind parameter to give one later), newest
        first."""
        now = utcnow() if now is None else now
        return (sa.select(Ban)
                .where(sa.or_(Ban.expires_at.is_(None), Ban.expires_at > now))
                .order_by(Ban.created_at.desc(), Ban.id.desc()))

    @property
    def is_active(self) -> bool:
        return self.expires_at is None or self.expires_at > utcnow()

    @property
    def label(self) -> str:
        """How the queue names the rule: "banned IP 203.0.113.0/24"."""
        noun = {BanKind.EMAIL: "email", BanKind.ACCOUNT: "account", BanKind.IP: "IP"}[self.kind]
        return f"banned {noun} {self.value}"

    def matches_ip(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
            return address in ipaddress.ip_network(self.value, strict=False)
        except ValueError:
            return False


class AuditAction(enum.Enum):
    APPROVE = "approve"
    UNAPPROVE = "unapprove"
    SPAM = "spam"
    NOT_SPAM = "not_spam"
    TRASH = "trash"
    RESTORE = "restore"
    DELETE = "delete"
    EDIT = "edit"
    REPLY = "reply"
    EMPTY_SPAM = "empty_spam"
    EMPTY_TRASH = "empty_trash"
    BAN = "ban"
    UNBAN = "unban"
    SETTINGS = "settings"
    OPEN_COMMENTS = "open_comments"
    CLOSE_COMMENTS = "close_comments"
    SIGN_IN = "sign_in"

    @property
    def label(self) -> str:
        return {"not_spam": "Not spam", "empty_spam": "Emptied spam", "empty_trash": "Emptied trash",
                "open_comments": "Opened comments", "close_comments": "Closed comments",
                "sign_in": "Signed in"}.get(
            self.value, self.value.capitalize())


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in admin, the holder of a signed mail link, or a comment's author
    from their own browser."""

    user: User | None
    label: str
    ip: str = ""

    @classmethod
    def of(cls, user: User, ip: str = "") -> Actor:
        return cls(user, f"{user.name} <{user.email}>" if user.email else user.name, ip)

    @classmethod
    def author_of(cls, comment: Comment, ip: str = "") -> Actor:
        return cls(None, f"{comment.author_name} (the author, from their browser)", ip)


class AuditEntry(db.Model):
    """Who did what to which comment, and when. Kept when the comment itself is deleted."""

    __tablename__ = "audit_log"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor: so.Mapped[str] = so.mapped_column(sa.String(300))  # "Name <email>", as it was then
    action: so.Mapped[AuditAction] = so.mapped_column(_enum(AuditAction, "audit_action"))
    # No foreign key: the entry outlives a comment deleted for good.
    comment_id: so.Mapped[int | None] = so.mapped_column(index=True)
    ip: so.Mapped[str] = so.mapped_column(sa.String(45), default="")
    detail: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)

    @staticmethod
    def newest() -> sa.Select:
        return sa.select(AuditEntry).order_by(AuditEntry.id.desc())

    @classmethod
    def add(cls, actor: Actor, action: AuditAction, comment_id: int | None = None,
            **detail: Any) -> AuditEntry:
        """Add an entry to the current transaction."""
        entry = cls(actor_id=actor.user.id if actor.user is not None else None,
                    actor=actor.label[:300], action=action, comment_id=comment_id,
                    ip=actor.ip[:45], detail=detail)
        db.session.add(entry)
        return entry


class CommentRevision(db.Model):
    """A comment as it was before an edit."""

    __tablename__ = "comment_revisions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    comment_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    author_name: so.Mapped[str] = so.mapped_column(sa.String(245))
    author_email: so.Mapped[str] = so.mapped_column(sa.String(100), default="")
    author_url: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    content: so.Mapped[str] = so.mapped_column(sa.Text)
    edited_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))
    edited_by: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def keep(cls, comment: Comment, actor: Actor) -> CommentRevision:
        """Keep *comment* as it is now, before *actor* changes it."""
        revision = cls(comment_id=comment.id, author_name=comment.author_name,
                       author_email=comment.author_email, author_url=comment.author_url,
                       content=comment.content, edited_by_id=actor.user.id if actor.user else None,
                       edited_by=actor.label[:300])
        db.session.add(revision)
        return revision

    @staticmethod
    def of(comment: Comment) -> sa.Select:
        """*comment*'s earlier versions, newest first."""
        return (sa.select(CommentRevision).where(CommentRevision.comment_id == comment.id)
                .order_by(CommentRevision.id.desc()))
