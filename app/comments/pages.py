"""Which comments the article page shows: all of them, or one page of threads as WordPress pages.

With "Break comments into pages" on, a page holds `comments_per_page` top-level comments with all
their replies; page 1 has the oldest threads, and the permalink shows the newest page or the
first, as the Discussion settings say. Three queries whatever the number of comments: the count,
the page's top-level comments, and their replies (a recursive query).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa

from app.extensions import db
from app.models import Comment, CommentStatus, Post
from app.settings import get_setting


@dataclass(frozen=True)
class CommentPage:
    comments: list[Comment]  # oldest first; the template nests them
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


def _approved(post: Post):
    return sa.and_(Comment.post_id == post.id, Comment.status == CommentStatus.APPROVED)


def comment_page(post: Post, number: int | None = None) -> CommentPage:
    """The comments to show for comment page *number* (None: the default page) of *post*."""
    newest_first = get_setting("comment_order") == "desc"
    if not get_setting("page_comments"):
        if number not in (None, 1):
            raise NoSuchPage(number)
        comments = list(db.session.scalars(Comment.visible_on(post)))
        return CommentPage(comments, len(comments), 1, 1, newest_first)

    per_page = max(1, int(get_setting("comments_per_page")))
    total = db.session.scalar(sa.select(sa.func.count(Comment.id)).where(_approved(post))) or 0
    roots = sa.and_(_approved(post), Comment.parent_id.is_(None))
    top_level = db.session.scalar(sa.select(sa.func.count(Comment.id)).where(roots)) or 0
    pages = max(1, math.ceil(top_level / per_page))
    if number is None:
        number = pages if get_setting("default_comments_page") == "newest" else 1
    if not 1 <= number <= pages:
        raise NoSuchPage(number)

    page_roots = (sa.select(Comment.id).where(roots)
                  .order_by(Comment.created_at, Comment.id)
                  .offset((number - 1) * per_page).limit(per_page)).cte("page_roots")
    # the page's threads: its top-level comments and every approved reply below them
    thread = sa.select(Comment.id).where(Comment.id.in_(sa.select(page_roots.c.id))).cte(
        "thread", recursive=True)
    thread = thread.union_all(
        sa.select(Comment.id).where(_approved(post), Comment.parent_id == thread.c.id))
    comments = list(db.session.scalars(
        sa.select(Comment).where(Comment.id.in_(sa.select(thread.c.id)))
        .order_by(Comment.created_at, Comment.id)))
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
    before = db.session.scalar(sa.select(sa.func.count(Comment.id)).where(
        _approved(root.post), Comment.parent_id.is_(None),
        sa.or_(Comment.created_at < root.created_at,
               sa.and_(Comment.created_at == root.created_at, Comment.id < root.id)))) or 0
    return before // per_page + 1
