"""The JSON API: list and create comments, the live stream, the reader's own session state."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    get_template_attribute,
    jsonify,
    request,
)
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app import live
from app.comments import service
from app.comments.cookies import (
    my_comments,
    remember_commenter,
    remember_mine,
    remembered_commenter,
)
from app.comments.openapi import SPEC
from app.errors import error_response
from app.extensions import db
from app.live.stream import TooManyStreams
from app.models import Comment, CommentStatus, Event, Post, commenter_avatar
from app.settings import get_setting

bp = Blueprint("api", __name__, url_prefix="/api")

# The fields a client may send when creating or editing a comment, with the JSON types the
# OpenAPI document declares (anything else is ignored).
CREATE_FIELDS = SPEC["components"]["schemas"]["NewComment"]["properties"]
EDIT_FIELDS = SPEC["components"]["schemas"]["EditComment"]["properties"]
_JSON_TYPES = {"string": (str, "Must be text."),
               "integer": (int, "Must be a whole number (a JSON integer)."),
               "boolean": (bool, "Must be true or false.")}


@bp.get("/posts/<slug>/comments")
def list_comments(slug: str):
    """Return the post's approved comments, oldest first (`?after=<id>` for newer ones)."""
    post = Post.by_slug_or_404(slug)
    query = Comment.visible_on(post)
    after = request.args.get("after")
    if after is not None:
        try:
            query = query.where(Comment.id > service.parse_id(after))
        except ValueError:
            return error_response(400, "`after` must be a comment id (a whole number).",
                                  fields={"after": "Must be a whole number."})
    comments = db.session.scalars(query).all()
    return {"post": post.slug, "count": post.approved_count(),
            "comments": [c.to_dict() for c in comments]}


@bp.post("/posts/<slug>/comments")
def create_comment(slug: str):
    """Create a comment from JSON, by the same rules as the form (CSRF token in X-CSRFToken)."""
    post = Post.by_slug_or_404(slug)
    data = _json_object()
    if data is None:
        return error_response(400, "Send the comment as a JSON object.", error="bad_json")
    wrong = _wrong_types(data, CREATE_FIELDS)
    fields = {name: data[name] for name in CREATE_FIELDS if name in data and name not in wrong}
    if service.HONEYPOT in data:  # the form's trap for robots, which parley.js sends along
        fields[service.HONEYPOT] = data[service.HONEYPOT]
    user = current_user if current_user.is_authenticated else None
    if wrong:  # one answer naming every field: the gate's verdict on the others too
        try:
            service.validate(post, fields, user)
        except service.CommentRejected as rejected:
            wrong = {**rejected.fields, **wrong}
        return _invalid(wrong)
    try:
        submitted = service.submit(post, fields, user=user, ip=request.remote_addr or "",
                                   user_agent=request.user_agent.string)
    except service.CommentRejected as rejected:
        db.session.rollback()
        headers = {"Retry-After": str(rejected.retry_after)} if rejected.retry_after else None
        return error_response(rejected.status, rejected.message, error=rejected.error,
                              fields=rejected.fields, headers=headers)
    comment = submitted.comment
    until = service.editable_until(comment)
    # The answer is built before the commit, inside the comment's own transaction.
    response = jsonify({"comment": submitted.event or _with_html(comment), "held": submitted.held,
                        "editable_until": until.isoformat() if until else None})
    db.session.commit()
    response.status_code = 201
    response.headers["Location"] = f"{request.url_root.rstrip('/')}/api/posts/{slug}/comments"
    if user is None:
        remember_commenter(response, comment.author_name, comment.author_email,
                           comment.author_url, bool(data.get("remember")))
    remember_mine(response, submitted.signed_id, comment.stamp)  # dropped: an id no comment has
    return response


def _wrong_types(data: dict, declared: dict) -> dict[str, str]:
    """A message for each field of *data* that is not of the JSON type declared for it (`"1"`,
    `1.5` or `true` for a comment's number, `null` or a number for a text), or is longer than
    declared, surrounding whitespace included. The rest is the gate's to check."""
    fields = {}
    for name in filter(data.__contains__, declared):
        if "type" not in declared[name]:
            continue  # the honeypot: anything in it is telling, and answered as held
        kind, message = _JSON_TYPES[declared[name]["type"]]
        value = data[name]
        limit = declared[name].get("maxLength")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            fields[name] = message
        elif limit is not None and len(value) > limit:
            fields[name] = f"This is too long: at most {limit:,} characters, not {len(value):,}."
    return fields


def _invalid(fields: dict[str, str]) -> Response:
    name, message = next(iter(fields.items()))
    return error_response(400, f"{name}: {message}" if len(fields) == 1
                          else "Please correct the highlighted fields.",
                          error="invalid", fields=fields)


def _json_object() -> dict | None:
    """The request's body as a JSON object, or None for anything else.

    `get_json(silent=True)` answers None for malformed JSON but lets a RecursionError through
    (`[[[[…`, 100,000 deep, fits in 256 KiB), which would be a 500.
    """
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        return None
    return data if isinstance(data, dict) else None


def _with_html(comment: Comment) -> dict:
    """A comment's public fields and its list item as the page shows it (marked held if so)."""
    if comment.status == CommentStatus.APPROVED:
        return live.comment_event_data(comment)  # what its live event carries
    macro = get_template_attribute("comments/_comment.html", "comment_item")
    return {**comment.to_dict(),
            "html": str(macro(comment, live.comment_depth(comment), comment.post, True))}


@bp.get("/session")
def session_state():
    """The per-reader parts of the cached article page: sign-in, saved details, own held comments."""
    slug = request.args.get("post", "")
    post = db.session.scalar(db.select(Post).where(Post.slug == slug)) if slug else None
    held, mine = [], []
    ids = my_comments()
    if post is not None and ids:
        rows = [c for c in db.session.scalars(db.select(Comment).where(
            Comment.id.in_(ids), Comment.post_id == post.id,
            Comment.status.in_([CommentStatus.PENDING, CommentStatus.APPROVED])
        ).order_by(Comment.id)) if ids[c.id] == c.stamp]
        held = [_with_html(c) for c in rows if c.status == CommentStatus.PENDING]
        mine = [{"id": c.id, "content": c.content, "editable_until": until.isoformat()}
                for c in rows if (until := service.editable_until(c)) is not None]
    user = None
    if current_user.is_authenticated:
        user = {"name": current_user.name,
                "avatar": commenter_avatar(current_user.avatar_url, current_user.email or ""),
                "provider": current_user.provider_label, "is_admin": current_user.is_admin}
    response = jsonify({
        "csrf_token": generate_csrf(),
        "user": user,
        "commenter": None if user else remembered_commenter(),
        "held": held,
        "mine": mine,
    })
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _own_comment(comment_id: int) -> Comment:
    """The comment *comment_id* if this browser wrote it and may still change it; else abort."""
    comment = db.session.get(Comment, comment_id) if comment_id <= service.MAX_ID else None
    if comment is None or comment.status not in (CommentStatus.PENDING, CommentStatus.APPROVED):
        abort(404, description="There is no such comment.")
    if my_comments().get(comment_id) != comment.stamp:
        abort(403, description="Only the browser that posted this comment can change it.")
    if service.editable_until(comment) is None:
        minutes = get_setting("comment_edit_minutes")
        abort(403, description=f"Comments can be changed for {minutes} minutes after posting; "
                               "that time has passed.")
    return comment


@bp.put("/comments/<int:comment_id>")
def edit_own_comment(comment_id: int):
    """Let a commenter correct their own comment for a short while (signed cookie, CSRF)."""
    comment = _own_comment(comment_id)
    data = _json_object()
    if data is None:
        return error_response(400, "Send the change as a JSON object.", error="bad_json")
    if wrong := _wrong_types(data, EDIT_FIELDS):
        return _invalid(wrong)
    try:
        service.edit_own(comment, data.get("comment"), ip=request.remote_addr or "",
                         user_agent=request.user_agent.string)
    except service.CommentRejected as rejected:
        db.session.rollback()
        return error_response(rejected.status, rejected.message, error=rejected.error,
                              fields=rejected.fields)
    answer = {"comment": _with_html(comment), "held": comment.status != CommentStatus.APPROVED}
    db.session.commit()
    return answer


@bp.delete("/comments/<int:comment_id>")
def delete_own_comment(comment_id: int):
    """Let a commenter take back their own comment for a short while."""
    comment = _own_comment(comment_id)
    service.delete_own(comment, ip=request.remote_addr or "")
    db.session.commit()
    return "", 204


@bp.get("/posts/<slug>/live")
def live_stream(slug: str):
    """Stream the post's live events as Server-Sent Events, replaying from Last-Event-ID."""
    post = Post.by_slug_or_404(slug)
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    try:
        asked = int(raw) if raw not in (None, "") else None
    except ValueError:
        return error_response(400, "Last-Event-ID must be an event id (a whole number).")
    # Never past the log's end: an id from the future (a typo, a restored database) would set
    # this process's hub position for the post beyond every event to come, and no reader of the
    # post on this worker would hear of anything until it caught up.
    last = Event.last_id(post.id)
    last_event_id = last if asked is None else max(0, min(asked, last))
    post_id = post.id
    app = current_app._get_current_object()
    try:  # one of this reader's streams, up to LIVE_MAX_STREAMS_PER_IP (after ProxyFix)
        frames = live.post_stream(app, post_id, last_event_id, last, ip=request.remote_addr)
    except TooManyStreams as full:
        return error_response(
            429, f"Too many live streams are open from your address (at most "
            f"{app.config['LIVE_MAX_STREAMS_PER_IP']}). Close some pages and try again.",
            error="too_many_streams", headers={"Retry-After": str(full.retry_after)})
    db.session.remove()  # hold no pooled connection while the stream is open
    # direct_passthrough: the stream yields bytes already; no per-event re-encoding layer
    response = Response(frames, mimetype="text/event-stream", direct_passthrough=True)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    return response


@bp.get("/openapi.json")
def openapi():
    """Describe the JSON API as OpenAPI 3."""
    return SPEC
