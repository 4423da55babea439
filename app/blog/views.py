"""The article page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, make_response, render_template, request
from flask_login import current_user

from app.blog import cache
from app.comments.pages import NoSuchPage, comment_page
from app.comments.threads import build_thread
from app.extensions import db
from app.likes import likers
from app.models import Comment, CommentStatus, Event, Post
from app.moderation.rules import accepts_comments
from app.security import check_moderation_hash
from app.settings import get_setting

bp = Blueprint("blog", __name__)


def _held_from_link(post: Post) -> Comment | None:
    """The held comment named by a no-JS redirect's `?unapproved=ID&moderation-hash=…`."""
    try:
        comment_id = int(request.args.get("unapproved", ""))
    except ValueError:
        return None
    if not 0 < comment_id < 2**31:  # a row id (a 32-bit column on PostgreSQL)
        return None
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.post_id != post.id or comment.status != CommentStatus.PENDING:
        return None
    if not check_moderation_hash(comment_id, comment.stamp, request.args.get("moderation-hash", "")):
        return None
    return comment


def render_post(post: Post, status: int = 200, page_number: int | None = None,
                **extra: Any) -> Response:
    """Render *post* with (a page of) its approved comments, threaded."""
    # Read the event position first: anything after it is replayed by the live stream.
    key = None
    if status == 200 and not extra and cache.get_cache(current_app) and cache.cacheable():
        # the same bytes for every anonymous reader: keep them (the key holds the position)
        key, last_event_id = cache.page_key(post)
    else:
        last_event_id = Event.last_id(post.id)
    try:
        page = comment_page(post, page_number)
    except NoSuchPage:
        abort(404, description="There is no such page of comments.")
    comments = page.comments
    held = _held_from_link(post)
    if held is not None:
        comments = [*comments, held]
    thread = build_thread(comments, get_setting("thread_comments_depth"))
    if page.newest_first:
        thread.reverse()
    response = make_response(render_template(
        "blog/post.html",
        post=post,
        accepts_comments=accepts_comments(post),
        thread=thread,
        page=page,
        held_ids={held.id} if held is not None else set(),
        comment_count=page.total,
        likers=likers(post.id),
        last_event_id=last_event_id,
        **extra,
    ), status)
    if held is not None or current_user.is_authenticated or status != 200:
        response.headers["Cache-Control"] = "private, no-store"
    elif key is not None:
        response = cache.store(key, response)
    return response


@bp.get("/")
def index():
    """Show the latest post in full: a one-post blog's front page is its post."""
    hit = cache.cached_page()
    if hit is not None:
        return hit
    post = db.first_or_404(Post.latest())
    return render_post(post)


def _show(year: int, month: int, day: int, slug: str, page: int | None = None) -> Response:
    """The cached anonymous page if there is one, else *slug*'s post rendered (404 if the date
    in the address is not its date)."""
    hit = cache.cached_page(slug)
    if hit is not None:
        return hit
    post = Post.by_permalink(year, month, day, slug)
    if post is None:
        abort(404)
    return render_post(post, page_number=page)


@bp.get("/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<slug>/")
def permalink(year: int, month: int, day: int, slug: str):
    """Show a post at its WordPress-style permalink."""
    return _show(year, month, day, slug)


@bp.get("/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<slug>/"
        "comment-page-<int:page>/")
def comment_page_view(year: int, month: int, day: int, slug: str, page: int):
    """Show one page of a post's comments, at WordPress's address for it."""
    return _show(year, month, day, slug, page)
