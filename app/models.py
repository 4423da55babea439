"""Parley's data model: posts, comments, people, their sign-in accounts and the live event log."""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.providers import PROVIDERS_BY_NAME
from app.comments.content import http_url
from app.extensions import db
from app.words import format_comment_date, local_time


def utcnow() -> datetime:
    return datetime.now(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC datetime on every database (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect, coltype):
        """On SQLite, parse the stored text straight into an aware datetime: a page of comments
        reads two of these per row, and the generic path (SQLAlchemy's parser, then
        process_result_value) cost about a third of reading the row. A stored time is naive
        UTC: parsed with "+00:00" it comes out aware at once (`replace(tzinfo=…)` alone cost
        ten times the parse)."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        parse, to_utc = datetime.fromisoformat, self.process_result_value

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            try:
                moment = parse(value + "+00:00")
            except ValueError:  # written with a zone of its own ("Z", "+05:00")
                moment = parse(value)
            # A bare date parses too, but naive ("+" is read as the date-time separator):
            # anything not already UTC goes through the general rule.
            return moment if moment.tzinfo is UTC else to_utc(moment, dialect)

        return process


class CommentStatus(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    SPAM = "spam"
    TRASH = "trash"


class Post(db.Model):
    __tablename__ = "posts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    slug: so.Mapped[str] = so.mapped_column(sa.String(200), unique=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    published_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, index=True)
    byline: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    standfirst: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    body: so.Mapped[str] = so.mapped_column(sa.Text)  # trusted HTML, written by the blog's authors
    source_line: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    like_count: so.Mapped[int] = so.mapped_column(default=0)
    comments_open: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    comments: so.WriteOnlyMapped[Comment] = so.relationship(
        back_populates="post", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Post {self.slug}>"

    @staticmethod
    def latest() -> sa.Select:
        """The published posts, newest first."""
        return (
            sa.select(Post)
            .where(Post.published_at <= utcnow())
            .order_by(Post.published_at.desc(), Post.id.desc())
        )

    @staticmethod
    def by_slug_or_404(slug: str) -> Post:
        """The post the API and form addresses (/…/posts/<slug>/…) name, or a 404 saying so."""
        post = db.session.scalar(_POST_BY_SLUG, {"slug": slug})
        if post is None:
            abort(404, description="There is no post with that address.")
        return post

    @staticmethod
    def by_permalink(year: int, month: int, day: int, slug: str) -> Post | None:
        post = db.session.scalar(_POST_BY_SLUG, {"slug": slug})
        if post is None:
            return None
        # The date in the URL is the blog's local date, as WordPress builds permalinks.
        local = local_time(post.published_at)
        if (local.year, local.month, local.day) != (year, month, day):
            return None
        return post

    def approved_count(self) -> int:
        return CommentCount.of(self.id)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(245))
    email: so.Mapped[str | None] = so.mapped_column(sa.String(254), index=True)
    email_verified: so.Mapped[bool] = so.mapped_column(default=False)
    avatar_url: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    profile_url: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    is_admin: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_login_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    accounts: so.Mapped[list[OAuthAccount]] = so.relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.name}>"

    @staticmethod
    def load(user_id: str) -> User | None:
        try:
            return db.session.get(User, int(user_id))
        except ValueError:
            return None

    @property
    def provider_label(self) -> str | None:
        """The sign-in provider this person uses, as readers call it ("Google")."""
        if not self.accounts:
            return None
        info = PROVIDERS_BY_NAME.get(self.accounts[-1].provider)
        return info.label if info else self.accounts[-1].provider

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)


class OAuthAccount(db.Model):
    """A user's identity at a sign-in provider, keyed on (provider, subject) — never on email."""

    __tablename__ = "oauth_accounts"
    __table_args__ = (sa.UniqueConstraint("provider", "subject"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: so.Mapped[str] = so.mapped_column(sa.String(32))
    subject: so.Mapped[str] = so.mapped_column(sa.String(255))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    user: so.Mapped[User] = so.relationship(back_populates="accounts")


class Comment(db.Model):
    __tablename__ = "comments"
    __table_args__ = (
        sa.Index("ix_comments_post_status_id", "post_id", "status", "id"),
        # The duplicate check finds the same words on a post by their digest (one or two rows,
        # however many comments the post and its author have).
        sa.Index("ix_comments_post_text", "post_id", "content_hash"),
        # A post's top-level comments in page order: a page of threads is found here (and the
        # pages counted) without sorting every comment of the post. At 10,000 comments that sort
        # was 9 of the page's 11.5 ms on SQLite. Partial, with parent_id as its last column: any
        # earlier and PostgreSQL, which does not take `parent_id IS NULL` as fixing a column,
        # still sorts; in the index at all so that SQLite reads the index alone (it covers).
        sa.Index("ix_comments_post_roots", "post_id", "status", "created_at", "id", "parent_id",
                 sqlite_where=sa.text("parent_id IS NULL"),
                 postgresql_where=sa.text("parent_id IS NULL")),
        # A comment's approved replies on its post: each step down a page's threads. With the
        # parent alone indexed, SQLite (which has no statistics unless told to gather them)
        # took the post-and-status index for this and read every comment of the post per step.
        sa.Index("ix_comments_replies", "parent_id", "post_id", "status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    post_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("posts.id", ondelete="CASCADE"))
    parent_id: so.Mapped[int | None] = so.mapped_column(  # indexed by ix_comments_replies
        sa.ForeignKey("comments.id", ondelete="SET NULL")
    )
    user_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    author_name: so.Mapped[str] = so.mapped_column(sa.String(245))
    author_email: so.Mapped[str] = so.mapped_column(sa.String(100), default="", index=True)
    author_url: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    content: so.Mapped[str] = so.mapped_column(sa.Text)  # what the author typed
    content_hash: so.Mapped[str | None] = so.mapped_column(sa.String(16))  # text_digest(content)
    content_html: so.Mapped[str] = so.mapped_column(sa.Text)  # sanitised, autop'd, linkified
    status: so.Mapped[CommentStatus] = so.mapped_column(
        sa.Enum(CommentStatus, name="comment_status", values_callable=lambda e: [m.value for m in e]),
        default=CommentStatus.PENDING,
    )
    notify: so.Mapped[bool] = so.mapped_column(default=False)
    ip: so.Mapped[str] = so.mapped_column(sa.String(45), default="", index=True)
    user_agent: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )
    edited_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)  # its text changed
    notified_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)  # subscribers told

    # --- moderation (issue 5): why the rules held, spammed or trashed it, e.g. ["first comment"].
    # None for comments the rules never screened (imports, the seed).
    hold_reasons: so.Mapped[list[str] | None] = so.mapped_column(sa.JSON, default=None)
    # --- end moderation

    # --- WordPress import/export (app/wxr/) — both nullable: comments made here have neither.
    # The comment's id in the WordPress export (WXR) it was imported from, so that importing the
    # same file again finds it instead of adding it twice.
    wp_id: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    # WordPress's comment_type for pings: "pingback" or "trackback"; None for an ordinary comment.
    comment_type: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    # --- end WordPress import/export

    post: so.Mapped[Post] = so.relationship(back_populates="comments")
    user: so.Mapped[User | None] = so.relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<Comment {self.id} {self.status.value}>"

    @staticmethod
    def visible_on(post: Post) -> sa.Select:
        """What the public sees on *post*: its approved comments, oldest first."""
        return (
            sa.select(Comment)
            .where(Comment.post_id == post.id, Comment.status == CommentStatus.APPROVED)
            .order_by(Comment.created_at, Comment.id)
        )

    @property
    def avatar_url(self) -> str:
        return commenter_avatar(self.user.avatar_url if self.user else None, self.author_email)

    @property
    def author_link(self) -> str:
        return commenter_link(self.author_url, self.user.profile_url if self.user else None)

    @property
    def stamp(self) -> int:
        """When this comment was made, in whole milliseconds: with its id, what names THIS
        comment in a cookie or a signed link. An id alone can come back (SQLite gives a deleted
        last row's id to the next one), and must then grant nothing over the newcomer."""
        made = self.created_at if self.created_at is not None else utcnow()
        return (made - _EPOCH) // timedelta(milliseconds=1)

    @property
    def website(self) -> str:
        """The website the commenter gave, as a link may point at it ("" unless http(s))."""
        return http_url(self.author_url)

    def to_dict(self) -> dict[str, Any]:
        """The public fields of a comment; emails and IPs never leave the server this way."""
        return {
            "id": self.id,
            "post_id": self.post_id,
            "parent_id": self.parent_id,
            "author": self.author_name,
            "author_url": self.author_link or None,
            "avatar": self.avatar_url,
            "content_html": self.content_html,
            "status": self.status.value,
            "created_at": self.created_at.isoformat(),
            "date": format_comment_date(self.created_at),
            "edited": self.edited_at is not None,
        }


def text_digest(content: str) -> str:
    """A short digest of a comment's text: the duplicate check's index key (not a secret)."""
    return hashlib.blake2b(content.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


@sa.event.listens_for(Comment.content, "set")
def _digest_text(comment: Comment, value: str | None, old, initiator) -> None:
    """Whenever a comment's text is set (a new comment, an edit, an import), so is its digest."""
    comment.content_hash = text_digest(value) if value is not None else None


class CommentCount(db.Model):
    """How many approved comments a post has, kept by the database itself.

    Triggers on `comments` (below, and in the migrations) move it on every insert, delete and
    change of status or post, whichever way the change comes (the ORM, bulk statements, an
    import, raw SQL), so knowing a post's count never means counting its comments: every
    published comment tells live readers the new count, and counting was a scan of the post.
    A table of its own rather than a column of `posts`, so a comment's writer never queues
    behind the writers of the post row (likes, the admin).

    On PostgreSQL the trigger runs at COMMIT (a deferred constraint trigger), under the post's
    commit lock (see `Event`): a post's row is locked from there to the end of the commit, never
    across a round trip, so the writers of a busy post do not wait in one line. The price: until
    its commit, a transaction's own changes are not in the count it reads (SQLite counts at once).
    """

    __tablename__ = "comment_counts"

    post_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    approved: so.Mapped[int] = so.mapped_column(default=0)

    @staticmethod
    def of(post_id: int) -> int:
        return db.session.connection().execute(_APPROVED_COUNT, {"post_id": post_id}).scalar() or 0


_APPROVED_COUNT = sa.select(CommentCount.approved).where(
    CommentCount.post_id == sa.bindparam("post_id"))

# SQLite's are the same statements as in the migration that added the table (c7d1e2f3a4b5).
COUNT_TRIGGERS = {
    "sqlite": [
        """CREATE TRIGGER comments_counted_insert AFTER INSERT ON comments
        WHEN NEW.status = 'approved'
        BEGIN
            INSERT INTO comment_counts (post_id, approved) VALUES (NEW.post_id, 1)
            ON CONFLICT (post_id) DO UPDATE SET approved = approved + 1;
        END""",
        """CREATE TRIGGER comments_counted_delete AFTER DELETE ON comments
        WHEN OLD.status = 'approved'
        BEGIN
            UPDATE comment_counts SET approved = approved - 1 WHERE post_id = OLD.post_id;
        END""",
        """CREATE TRIGGER comments_counted_update AFTER UPDATE OF status, post_id ON comments
        WHEN OLD.status IS NOT NEW.status OR OLD.post_id IS NOT NEW.post_id
        BEGIN
            UPDATE comment_counts SET approved = approved - 1
            WHERE post_id = OLD.post_id AND OLD.status = 'approved';
            INSERT INTO comment_counts (post_id, approved)
            SELECT NEW.post_id, 1 WHERE NEW.status = 'approved'
            ON CONFLICT (post_id) DO UPDATE SET approved = approved + 1;
        END""",
    ],
    # At COMMIT, under the post's commit lock (see EVENT_TRIGGERS); the same statements are in
    # the migration that made them so (e9b3c5d7f1a2_events_positioned_at_commit).
    "postgresql": [
        """CREATE OR REPLACE FUNCTION parley_count_comments() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' AND OLD.status = 'approved' THEN
                PERFORM pg_advisory_xact_lock(1518206976 + OLD.post_id);
                UPDATE comment_counts SET approved = approved - 1 WHERE post_id = OLD.post_id;
            END IF;
            IF TG_OP <> 'DELETE' AND NEW.status = 'approved' THEN
                PERFORM pg_advisory_xact_lock(1518206976 + NEW.post_id);
                UPDATE comment_counts SET approved = approved + 1 WHERE post_id = NEW.post_id;
                IF NOT FOUND THEN  -- the post's first; none if the post went in this transaction
                    INSERT INTO comment_counts (post_id, approved)
                    SELECT id, 1 FROM posts WHERE id = NEW.post_id
                    ON CONFLICT (post_id) DO UPDATE SET approved = comment_counts.approved + 1;
                END IF;
            END IF;
            RETURN NULL;
        END
        $$""",
        """CREATE CONSTRAINT TRIGGER comments_counted
        AFTER INSERT OR DELETE OR UPDATE OF status, post_id ON comments
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION parley_count_comments()""",
    ],
}
for _dialect, _statements in COUNT_TRIGGERS.items():
    for _statement in _statements:
        sa.event.listen(Comment.__table__, "after_create",
                        sa.DDL(_statement).execute_if(dialect=_dialect))


class Event(db.Model):
    """The durable outbox behind the live stream: written in the change's own transaction.

    An event's id is its position in its post's log, and a reader who has seen up to an id is
    sent what comes after it (`Last-Event-ID`), so ids must become visible in the order of the
    commits: an id that showed up after a larger one would never be sent. SQLite has one writer
    at a time, so the id taken at INSERT is already in commit order. On PostgreSQL writers run
    side by side and commit in any order, so the id taken at INSERT is provisional: a deferred
    trigger (EVENT_TRIGGERS), at COMMIT, takes the post's commit lock — held only from there to
    the end of the commit, never across a round trip — and gives each of the transaction's
    events a new id from the same sequence, and each `count` event the post's count as that
    commit leaves it. Whoever commits next for the post waits for that lock, so it takes a larger
    id only after this commit is visible.
    """

    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_post_id_id", "post_id", "id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    post_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("posts.id", ondelete="CASCADE"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(32))
    data: so.Mapped[str] = so.mapped_column(sa.Text)  # JSON, already public
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.data)

    @staticmethod
    def since(post_id: int, after: int) -> sa.Select:
        return (
            sa.select(Event)
            .where(Event.post_id == post_id, Event.id > after)
            .order_by(Event.id)
        )

    @staticmethod
    def last_id(post_id: int) -> int:
        return db.session.connection().execute(_LAST_EVENT, {"post_id": post_id}).scalar() or 0


# PostgreSQL: each event's final id, and a count event's count, given at COMMIT (see Event). The
# same statements are in the migration that added them (e9b3c5d7f1a2_events_positioned_at_commit).
EVENT_TRIGGERS = {
    "postgresql": [
        """CREATE OR REPLACE FUNCTION parley_position_event() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- the post's commit lock: 0x5A7E0000 + the post's id, as comments_counted takes it
            PERFORM pg_advisory_xact_lock(1518206976 + NEW.post_id);
            IF NEW.kind = 'count' THEN
                UPDATE events SET id = nextval('events_id_seq'), data = json_build_object(
                    'count', COALESCE((SELECT approved FROM comment_counts
                                       WHERE post_id = NEW.post_id), 0))::text
                WHERE id = NEW.id;
            ELSE
                UPDATE events SET id = nextval('events_id_seq') WHERE id = NEW.id;
            END IF;
            RETURN NULL;
        END
        $$""",
        """CREATE CONSTRAINT TRIGGER events_positioned AFTER INSERT ON events
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION parley_position_event()""",
    ],
}
for _dialect, _statements in EVENT_TRIGGERS.items():
    for _statement in _statements:
        sa.event.listen(Event.__table__, "after_create",
                        sa.DDL(_statement).execute_if(dialect=_dialect))

# Statements the article page runs on every uncached request, built once (building costs more
# than running them).
_POST_BY_SLUG = sa.select(Post).where(Post.slug == sa.bindparam("slug"))
_LAST_EVENT = sa.select(sa.func.max(Event.id)).where(Event.post_id == sa.bindparam("post_id"))


class Like(db.Model):
    """A reader likes a post: with their account, or (confirmed by mail) with an email."""

    __tablename__ = "likes"
    __table_args__ = (sa.UniqueConstraint("post_id", "user_id"),
                      sa.UniqueConstraint("post_id", "email"))

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    post_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    email: so.Mapped[str | None] = so.mapped_column(sa.String(100))
    name: so.Mapped[str] = so.mapped_column(sa.String(245), default="")
    confirmed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    user: so.Mapped[User | None] = so.relationship(lazy="joined")

    @property
    def avatar_url(self) -> str:
        user = self.user
        return liker_avatar(self.email, user.email if user else None,
                            user.avatar_url if user else None)

    @property
    def display_name(self) -> str:
        return liker_name(self.name, self.user.name if self.user is not None else None)


class Subscription(db.Model):
    """Mail about new comments on a post (post_id set) or about new posts (post_id None).

    Double opt-in: nothing is sent before `confirmed_at` is set by the link in the first mail.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (sa.UniqueConstraint("email", "post_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(100), index=True)
    post_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    confirmed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    post: so.Mapped[Post | None] = so.relationship()


class Setting(db.Model):
    """A Discussion setting stored in the database (JSON value), edited from the admin."""

    __tablename__ = "settings"

    key: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    value: so.Mapped[str] = so.mapped_column(sa.Text)


# Every address a page, the API, a live event or a feed shows comes out through these helpers,
# and through `http_url`: a row stored before every door checked its URLs (an old import's
# `javascript:` website, a provider's odd picture) is shown without its link, never with it.

def commenter_avatar(account_avatar: str | None, email: str) -> str:
    """A commenter's picture: their sign-in account's (if it is an http(s) address), else their
    Gravatar."""
    return http_url(account_avatar) or gravatar_url(email)


def commenter_link(author_url: str, profile_url: str | None) -> str:
    """Where a commenter's name links: the website they gave, else their account's profile;
    "" (no link) unless that is an http(s) address."""
    return http_url(author_url) or http_url(profile_url)


def liker_avatar(email: str | None, account_email: str | None, account_avatar: str | None) -> str:
    """A liker's picture: their account's (if it is an http(s) address), else the Gravatar of
    the email they liked with."""
    return http_url(account_avatar) or gravatar_url(email or account_email or "")


def liker_name(name: str, account_name: str | None) -> str:
    """A liker's name: their account's when they liked signed in."""
    return account_name if account_name is not None else (name or "A reader")


def gravatar_url(email: str, size: int = 48) -> str:
    digest = hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()
    return f"https://www.gravatar.com/avatar/{digest}?s={size}&d=identicon&r=g"
