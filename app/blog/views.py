"""The article page."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, make_response, render_template, request, url_for
from flask_login import current_user

from app.blog import bp
from app.comments.threads import build_thread
from app.extensions import db
from app.models import Comment, CommentStatus, Event, Post
from app.security import check_moderation_hash
from app.settings import get_setting
from app.templating import local_time


def permalink_args(post: Post) -> dict[str, Any]:
    """The parts of *post*'s WordPress-style permalink (its date in the blog's timezone)."""
    local = local_time(post.published_at)
    return {"year": local.year, "month": local.month, "day": local.day, "slug": post.slug}


def post_url(post: Post, **values: Any) -> str:
    return url_for("blog.permalink", **permalink_args(post), **values)


def _held_from_link(post: Post) -> Comment | None:
    """The held comment named by a no-JS redirect's `?unapproved=ID&moderation-hash=…`."""
    try:
        comment_id = int(request.args.get("unapproved", ""))
    except ValueError:
        return None
    if not check_moderation_hash(comment_id, request.args.get("moderation-hash", "")):
        return None
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.post_id != post.id or comment.status != CommentStatus.PENDING:
        return None
    return comment


def render_post(post: Post, status: int = 200, **extra: Any) -> Response:
    """Render *post* with its approved comments, threaded, oldest first."""
    # Read the event position first: anything after it is replayed by the live stream.
    last_event_id = Event.last_id(post.id)
    comments = list(db.session.scalars(Comment.visible_on(post)))
    count = len(comments)
    held = _held_from_link(post)
    if held is not None:
        comments.append(held)
    response = make_response(render_template(
        "blog/post.html",
        post=post,
        thread=build_thread(comments, get_setting("thread_comments_depth")),
        held_ids={held.id} if held is not None else set(),
        comment_count=count,
        last_event_id=last_event_id,
        **extra,
    ), status)
    if held is not None or current_user.is_authenticated or status != 200:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/")
def index():
    """Show the latest post in full: a one-post blog's front page is its post."""
    post = db.first_or_404(Post.latest())
    return render_post(post)


@bp.get("/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<slug>/")
def permalink(year: int, month: int, day: int, slug: str):
    """Show a post at its WordPress-style permalink."""
    post = Post.by_permalink(year, month, day, slug)
    if post is None:
        abort(404)
    return render_post(post)
