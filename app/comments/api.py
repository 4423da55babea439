"""The JSON API: list and create comments, the live stream, the reader's own session state."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, get_template_attribute, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app import live
from app.comments import service
from app.comments.cookies import (
    held_comment_ids,
    remember_commenter,
    remember_held,
    remembered_commenter,
)
from app.comments.openapi import SPEC
from app.errors import error_response
from app.extensions import db
from app.models import Comment, CommentStatus, Event, Post

bp = Blueprint("api", __name__, url_prefix="/api")

# The fields a client may send when creating a comment (anything else is ignored).
CREATE_FIELDS = ("comment", "author", "email", "url", "comment_parent", "parent_id",
                 "subscribe_comments", "notify", "remember")


def _post_or_404(slug: str) -> Post:
    return db.first_or_404(db.select(Post).where(Post.slug == slug),
                           description="There is no post with that address.")


@bp.get("/posts/<slug>/comments")
def list_comments(slug: str):
    """Return the post's approved comments, oldest first (`?after=<id>` for newer ones)."""
    post = _post_or_404(slug)
    query = Comment.visible_on(post)
    after = request.args.get("after")
    if after is not None:
        try:
            query = query.where(Comment.id > int(after))
        except ValueError:
            return error_response(400, "`after` must be a comment id (a whole number).",
                                  fields={"after": "Must be a whole number."})
    comments = db.session.scalars(query).all()
    return {"post": post.slug, "count": post.approved_count(),
            "comments": [c.to_dict() for c in comments]}


@bp.post("/posts/<slug>/comments")
def create_comment(slug: str):
    """Create a comment from JSON, by the same rules as the form (CSRF token in X-CSRFToken)."""
    post = _post_or_404(slug)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return error_response(400, "Send the comment as a JSON object.", error="bad_json")
    fields = {name: data[name] for name in CREATE_FIELDS if name in data}
    user = current_user if current_user.is_authenticated else None
    try:
        comment = service.submit(post, fields, user=user, ip=request.remote_addr or "",
                                 user_agent=request.user_agent.string)
    except service.CommentRejected as rejected:
        headers = {"Retry-After": str(rejected.retry_after)} if rejected.retry_after else None
        return error_response(rejected.status, rejected.message, error=rejected.error,
                              fields=rejected.fields, headers=headers)
    held = comment.status != CommentStatus.APPROVED
    body = comment.to_dict()
    body["html"] = _comment_html(comment, held)
    response = jsonify({"comment": body, "held": held})
    response.status_code = 201
    response.headers["Location"] = f"{request.url_root.rstrip('/')}/api/posts/{slug}/comments"
    if user is None:
        remember_commenter(response, comment.author_name, comment.author_email,
                           comment.author_url, bool(data.get("remember")))
    if held:
        remember_held(response, comment.id)
    return response


def _comment_html(comment: Comment, held: bool) -> str:
    macro = get_template_attribute("comments/_comment.html", "comment_item")
    return str(macro(comment, live.comment_depth(comment), comment.post, held))


@bp.get("/session")
def session_state():
    """The per-reader parts of the cached article page: sign-in, saved details, own held comments."""
    slug = request.args.get("post", "")
    post = db.session.scalar(db.select(Post).where(Post.slug == slug)) if slug else None
    held = []
    if post is not None:
        ids = held_comment_ids()
        if ids:
            rows = db.session.scalars(db.select(Comment).where(
                Comment.id.in_(ids), Comment.post_id == post.id,
                Comment.status == CommentStatus.PENDING).order_by(Comment.id))
            held = [{**c.to_dict(), "html": _comment_html(c, True)} for c in rows]
    user = None
    if current_user.is_authenticated:
        user = {"name": current_user.name, "avatar": current_user.avatar_url,
                "provider": current_user.provider_label, "is_admin": current_user.is_admin}
    response = jsonify({
        "csrf_token": generate_csrf(),
        "user": user,
        "commenter": None if user else remembered_commenter(),
        "held": held,
    })
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/posts/<slug>/live")
def live_stream(slug: str):
    """Stream the post's live events as Server-Sent Events, replaying from Last-Event-ID."""
    post = _post_or_404(slug)
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    try:
        last_event_id = int(raw) if raw not in (None, "") else Event.last_id(post.id)
    except ValueError:
        return error_response(400, "Last-Event-ID must be an event id (a whole number).")
    post_id = post.id
    app = current_app._get_current_object()
    db.session.remove()  # hold no pooled connection while the stream is open
    response = Response(live.stream(app, post_id, last_event_id), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    return response


@bp.get("/openapi.json")
def openapi():
    """Describe the JSON API as OpenAPI 3."""
    return SPEC
