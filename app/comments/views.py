"""The no-JavaScript comment form: POST, then back to the article at the new comment."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request
from flask_login import current_user

from app.blog.views import render_post
from app.comments import service
from app.comments.cookies import remember_commenter, remember_mine
from app.comments.pages import comment_url
from app.extensions import csrf, db
from app.models import CommentStatus, Post
from app.security import moderation_hash, same_origin
from app.urls import post_url

bp = Blueprint("comments", __name__)

FORM_FIELDS = ("comment", "author", "email", "url", "comment_parent",
               "wp-comment-cookies-consent", "subscribe_comments", "subscribe_blog",
               service.HONEYPOT)


def commenter() -> object | None:
    return current_user if current_user.is_authenticated else None


def _target(post: Post, submitted: service.Submitted) -> str:
    """Where the no-JS form sends its author: their comment on its page, or their held comment
    through the signed link (WordPress's `?unapproved=ID&moderation-hash=…`; for a dropped
    comment the same link, whose hash shows nothing)."""
    comment = submitted.comment
    anchor = f"comment-{comment.id}"
    if comment.status == CommentStatus.APPROVED:
        return f"{comment_url(comment)}#{anchor}"
    return post_url(post, unapproved=comment.id,
                    **{"moderation-hash": moderation_hash(submitted.signed_id, comment.stamp)}
                    ) + f"#{anchor}"


@bp.post("/posts/<slug>/comments")
@csrf.exempt  # the article page is cached, so it carries no token: Origin/Sec-Fetch-Site instead
def post_form(slug: str):
    """Accept the HTML comment form; redirect to the new comment or show the errors in place."""
    post = Post.by_slug_or_404(slug)
    form = {name: request.form.get(name, "") for name in FORM_FIELDS}
    if not same_origin():
        current_app.logger.warning("comment form refused: cross-site post from %s",
                                   request.headers.get("Origin"))
        return render_post(post, status=403, comment_form=form, comment_errors={
            "__all__": "Your comment could not be posted from this page. "
                       "Please reload the article and try again."})
    try:
        submitted = service.submit(post, form, user=commenter(), ip=request.remote_addr or "",
                                   user_agent=request.user_agent.string)
    except service.CommentRejected as rejected:
        db.session.rollback()
        errors = dict(rejected.fields)
        if not errors or set(errors) - {"comment", "author", "email", "url"}:
            errors["__all__"] = rejected.message
        response = render_post(post, status=rejected.status, comment_form=form,
                               comment_errors=errors)
        if rejected.retry_after:
            response.headers["Retry-After"] = str(rejected.retry_after)
        return response

    comment = submitted.comment
    response = redirect(_target(post, submitted), 303)  # read before the commit, in its transaction
    db.session.commit()
    if comment.user_id is None:
        remember_commenter(response, comment.author_name, comment.author_email,
                           comment.author_url, bool(form["wp-comment-cookies-consent"]))
    # a dropped comment's: an id no comment has
    remember_mine(response, submitted.signed_id, submitted.comment.stamp)
    return response


@bp.get("/posts/<slug>/comments")
def form_get(slug: str):
    """A GET of the form's address (a reload after an error) goes back to the article."""
    post = Post.by_slug_or_404(slug)
    return redirect(post_url(post) + "#respond", 303)
