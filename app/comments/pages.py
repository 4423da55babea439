"""Which comments the article page shows: all of them, or one page of threads as WordPress pages.

With "Break comments into pages" on, a page holds `comments_per_page` top-level comments with all
their replies; page 1 has the oldest threads, and the permalink shows the newest page or the
first, as the Discussion settings say. Three queries whatever the number of comments: the count,
the page's top-level comments, and their replies (a recursive query).

The page reads its comments as plain rows (`PageComment`), not ORM objects: it only shows them,
and for a page of hundreds of comments the ORM's identity map and change tracking cost more than
the query (benchmarks: docs/benchmarks.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Comment,
    CommentCount,
    CommentStatus,
    Post,
    User,
    commenter_avatar,
    commenter_link,
)
from app.settings import get_setting
from app.urls import comment_page_url, post_url


class PageComment(NamedTuple):
    """An approved comment as the article page shows it (what the comment_item macro reads)."""

    id: int
    post_id: int
    parent_id: int | None
    author_name: str
    author_email: str
    author_url: str
    content_html: str
    created_at: datetime
    edited_at: datetime | None
    account_avatar: str | None
    account_profile: str | None

    @property
    def avatar_url(self) -> str:
        return commenter_avatar(self.account_avatar, self.author_email)

    @property
    def author_link(self) -> str:
        return commenter_link(self.author_url, self.account_profile)


# Built once, with bind parameters: building a statement costs more than running it here.
_POST = sa.bindparam("post_id")
_APPROVED = sa.and_(Comment.post_id == _POST, Comment.status == CommentStatus.APPROVED)
_ROOTS = sa.and_(_APPROVED, Comment.parent_id.is_(None))
_SHOWN = sa.select(
    Comment.id, Comment.post_id, Comment.parent_id, Comment.author_name, Comment.author_email,
    Comment.author_url, Comment.content_html, Comment.created_at, Comment.edited_at,
    User.avatar_url, User.profile_url,
).outerjoin(User, Comment.user_id == User.id).order_by(Comment.created_at, Comment.id)
_ALL = _SHOWN.where(_APPROVED)
_COUNT_ROOTS = sa.select(sa.func.count(Comment.id)).where(_ROOTS)
# top-level comments older than the one at (created_at, id): how many pages come before its own
_ROOTS_BEFORE = _COUNT_ROOTS.where(sa.or_(
    Comment.created_at < sa.bindparam("created_at", type_=Comment.created_at.type),
    sa.and_(Comment.created_at == sa.bindparam("created_at", type_=Comment.created_at.type),
            Comment.id < sa.bindparam("id"))))


def _page_of_threads() -> sa.Select:
    """A page of top-level comments (offset/limit parameters) with every approved reply below."""
    page_roots = (sa.select(Comment.id).where(_ROOTS).order_by(Comment.created_at, Comment.id)
                  .offset(sa.bindparam("offset")).limit(sa.bindparam("limit"))).cte("page_roots")
    thread = sa.select(Comment.id).where(Comment.id.in_(sa.select(page_roots.c.id))).cte(
        "thread", recursive=True)
    thread = thread.union_all(
        sa.select(Comment.id).where(_APPROVED, Comment.parent_id == thread.c.id))
    return _SHOWN.where(Comment.id.in_(sa.select(thread.c.id)))


_PAGE = _page_of_threads()


def _shown(statement: sa.Select, **params) -> list[PageComment]:
    # all(): one fetchall, not a fetchone per row (a sixth of reading 200 rows)
    rows = db.session.connection().execute(statement, params).all()
    return list(map(PageComment._make, rows))


@dataclass(frozen=True)
class CommentPage:
    comments: list[PageComment | Comment]  # oldest first; the template nests them
    total: int  # approved comments on the post, all pages
    number: int  # this page, 1-based (1 when not paging)
    pages: int  # how many pages (1 when not paging)
    newest_first: bool  # top-level comments newest first ("comment_order" = desc)

    @property
    def is_latest(self) -> bool:
        """Does a brand-new top-level comment belong on this page?"""
        return self.number == self.pages


class NoSuchPage(Exception):
    pass


def comment_page(post: Post, number: int | None = None) -> CommentPage:
    """The comments to show for comment page *number* (None: the default page) of *post*."""
    newest_first = get_setting("comment_order") == "desc"
    if not get_setting("page_comments"):
        if number not in (None, 1):
            raise NoSuchPage(number)
        comments = _shown(_ALL, post_id=post.id)
        return CommentPage(comments, len(comments), 1, 1, newest_first)

    per_page = max(1, int(get_setting("comments_per_page")))
    connection = db.session.connection()
    total = CommentCount.of(post.id)
    top_level = connection.execute(_COUNT_ROOTS, {"post_id": post.id}).scalar() or 0
    pages = max(1, math.ceil(top_level / per_page))
    if number is None:
        number = pages if get_setting("default_comments_page") == "newest" else 1
    if not 1 <= number <= pages:
        raise NoSuchPage(number)
    comments = _shown(_PAGE, post_id=post.id, offset=(number - 1) * per_page, limit=per_page)
    return CommentPage(comments, total, number, pages, newest_first)


def page_of(comment: Comment) -> int | None:
    """The comment page that shows *comment* (None when comments are not paged)."""
    if not get_setting("page_comments"):
        return None
    root = comment
    seen = {root.id}
    while root.parent_id is not None and root.parent_id not in seen:
        parent = db.session.get(Comment, root.parent_id)
        if parent is None or parent.status != CommentStatus.APPROVED:
            break
        root, _ = parent, seen.add(parent.id)
    per_page = max(1, int(get_setting("comments_per_page")))
    before = db.session.connection().execute(_ROOTS_BEFORE, {
        "post_id": root.post_id, "created_at": root.created_at, "id": root.id}).scalar() or 0
    return before // per_page + 1


def comment_url(comment: Comment) -> str:
    """The address of the page that shows *comment* (add `#comment-<id>` to reach it)."""
    number = page_of(comment)
    if number is None:
        return post_url(comment.post)
    return comment_page_url(comment.post, number)
