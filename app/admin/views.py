"""The Comments screen, Discussion settings, bans, the audit log, sign-in and mail links."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from app import fresh, live
from app.admin.access import bp, session_deadline
from app.admin.forms import (
    BanForm,
    BulkForm,
    CommentEditForm,
    DiscussionForm,
    EmptyForm,
    LoginForm,
    PostCommentsForm,
    ReplyForm,
)
from app.comments import service
from app.errors import error_response, wants_json
from app.extensions import db, limiter
from app.models import Comment, CommentStatus, Post, User, utcnow
from app.moderation import actions, bans, notify, rules
from app.moderation.actions import Action
from app.moderation.models import Actor, AuditAction, AuditEntry, Ban, BanKind, CommentRevision
from app.settings import get_setting, set_setting
from app.signing import BadLink
from app.urls import post_url, same_site_path

PER_PAGE = 20
AUDIT_PER_PAGE = 50
STATUS_VIEWS = ("all", "pending", "approved", "spam", "trash")


# --- helpers ---------------------------------------------------------------------------------

def actor() -> Actor:
    return Actor.of(current_user._get_current_object(), request.remote_addr or "")


def safe_next(default: str = "") -> str:
    """The form's `next` if it is a plain path in this site's admin, else *default*.

    Views read it first, before anything is changed: a `next` that could not be redirected to
    must never turn an action already committed into an error page.
    """
    target = request.form.get("next") or request.args.get("next")
    return same_site_path(target, under="/admin") or default


def comment_or_404(comment_id: int) -> Comment:
    comment = db.session.get(Comment, comment_id)
    if comment is None:
        abort(404, "There is no comment with that number; it may have been deleted.")
    return comment


def row_context(comment: Comment, csrf: str, back: str = "") -> dict[str, Any]:
    """What a queue row shows: the comment, whom it answers, where, and what can be done."""
    parent = db.session.get(Comment, comment.parent_id) if comment.parent_id else None
    has_revisions = db.session.scalar(
        sa.select(CommentRevision.id).where(CommentRevision.comment_id == comment.id).limit(1))
    return {
        "comment": comment,
        "parent": parent,
        "post_link": post_url(comment.post),
        "actions": actions.AVAILABLE[comment.status],
        "provider": comment.user.provider_label if comment.user is not None else None,
        "has_revisions": has_revisions is not None,
        "csrf": csrf,
        "back": back,
    }


def live_row(comment: Comment) -> str:
    """A queue row for the live stream, rendered once for every admin: its empty CSRF field is
    filled in by the page's script."""
    return render_template("admin/_row.html", r=row_context(comment, ""))


def queue_query(status: str, search: str) -> sa.Select:
    """The comments of a queue view, newest first, matching *search* in text, author, email or IP."""
    query = sa.select(Comment).options(so.selectinload(Comment.post))
    if status == "all":
        query = query.where(Comment.status.in_([CommentStatus.PENDING, CommentStatus.APPROVED]))
    else:
        query = query.where(Comment.status == CommentStatus(status))
    if search:
        like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(sa.or_(*[
            column.ilike(like, escape="\\") for column in (
                Comment.content, Comment.author_name, Comment.author_email,
                Comment.author_url, Comment.ip)]))
    return query.order_by(Comment.created_at.desc(), Comment.id.desc())


def _answer(message: str, comment: Comment | None = None, *, back: str, status: int = 200,
            category: str = "success"):
    """Reply to a queue action: JSON for the page's script, else flash and go *back* (the
    `safe_next()` the view read before acting; "" for the queue)."""
    if wants_json():
        body: dict[str, Any] = {"message": message, "counts": live.queue_counts()}
        if comment is not None:
            body.update(id=comment.id, status=comment.status.value,
                        html=render_template("admin/_row.html", r=row_context(
                            comment, generate_csrf(), back)))
        response = jsonify(body)
        response.status_code = status
        return response
    flash(message, category)
    return redirect(back or url_for("admin.comments"), 303)


def _form_errors(form) -> str:
    return " ".join(f"{getattr(form, name).label.text}: {' '.join(errs)}"
                    for name, errs in form.errors.items())


# --- sign-in ---------------------------------------------------------------------------------

def _login_rate_limit() -> str:
    return current_app.config["ADMIN_LOGIN_RATE_LIMIT"]


@bp.errorhandler(RateLimitExceeded)
def too_many_attempts(exc: RateLimitExceeded):
    """Answer a rate-limited sign-in with 429 and when to try again."""
    limit = limiter.current_limit
    retry = max(1, int(limit.reset_at - time.time())) if limit is not None else 60
    message = f"Too many sign-in attempts. Please wait {retry} seconds and try again."
    return error_response(429, message, error="rate_limited", headers={"Retry-After": str(retry)})


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"])
def login():
    """Sign in with a local admin's password, or with a social account in ADMIN_EMAILS."""
    form = LoginForm()
    back = safe_next()
    if request.method == "GET":
        form.next.data = back
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(sa.select(User).where(
            sa.func.lower(User.email) == email, User.password_hash.is_not(None))
            .order_by(User.id).limit(1))
        if user is not None and user.check_password(form.password.data) and user.is_admin:
            login_user(user)  # no "remember me": admin sessions expire
            user.last_login_at = utcnow()
            AuditEntry.add(actor(), AuditAction.SIGN_IN)
            db.session.commit()
            return redirect(back or url_for("admin.comments"), 303)
        current_app.logger.warning("admin sign-in failed for %r from %s", email, request.remote_addr)
        flash("The email address or password is not right, or that account is not an admin.",
              "error")
        return render_template("admin/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("admin/login.html", form=form), status


@bp.post("/logout")
def logout():
    """Sign out of the admin."""
    form = EmptyForm()
    if form.validate_on_submit():
        logout_user()
        flash("You are signed out.", "success")
    return redirect(url_for("admin.login"), 303)


# --- the Comments screen -------------------------------------------------------------------------

@bp.get("/")
def comments():
    """Show a moderation queue: All, Pending, Approved, Spam or Trash, searched and paged."""
    status = request.args.get("status", "all")
    if status not in STATUS_VIEWS:
        abort(404)
    search = request.args.get("s", "").strip()
    page = db.paginate(queue_query(status, search), page=request.args.get("page", 1, type=int),
                       per_page=PER_PAGE, error_out=False)
    csrf = generate_csrf()
    rows = [row_context(c, csrf, request.full_path) for c in page.items]
    return render_template("admin/comments.html", status=status, search=search, page=page,
                           rows=rows, counts=live.queue_counts(), bulk=BulkForm(), form=EmptyForm(),
                           actions=Action, max_id=db.session.scalar(sa.func.max(Comment.id)) or 0)


@bp.post("/comments/<int:comment_id>/<action>")
def moderate(comment_id: int, action: str):
    """Approve, unapprove, spam, not spam, trash, restore or delete one comment."""
    back = safe_next()
    try:
        chosen = Action(action)
    except ValueError:
        abort(404)
    comment = comment_or_404(comment_id)
    changed = actions.apply(comment, chosen, actor())
    db.session.commit()
    if chosen is Action.DELETE:
        return _answer(f"Comment {comment_id} was deleted permanently.", back=back)
    if not changed:
        return _answer(f"Comment {comment_id} is already {comment.status.value}.", comment,
                       back=back)
    return _answer(_done_message(chosen, 1), comment, back=back)


def _done_message(action: Action, n: int) -> str:
    verb = {Action.APPROVE: "approved", Action.UNAPPROVE: "unapproved",
            Action.SPAM: "marked as spam", Action.NOT_SPAM: "restored from the spam",
            Action.TRASH: "moved to the Trash", Action.RESTORE: "restored from the Trash",
            Action.DELETE: "permanently deleted"}[action]
    return f"{'1 comment' if n == 1 else f'{n} comments'} {verb}."


@bp.post("/comments/bulk")
def bulk():
    """Do one action to every selected comment."""
    back = safe_next()
    form = BulkForm()
    if not form.validate_on_submit():
        return _answer("Choose an action and at least one comment.", back=back, status=400,
                       category="error")
    ids = form.ids.data or []
    if not ids:
        return _answer("Select at least one comment first.", back=back, status=400,
                       category="error")
    changed = actions.apply_many(ids, Action(form.action.data), actor())
    db.session.commit()
    return _answer(_done_message(Action(form.action.data), changed), back=back)


@bp.post("/comments/empty/<status>")
def empty(status: str):
    """Empty Spam or Empty Trash: delete every comment there for good."""
    back = safe_next()
    if status not in ("spam", "trash"):
        abort(404)
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    n = actions.empty(CommentStatus(status), actor())
    db.session.commit()
    return _answer(f"{n} comment{'s' if n != 1 else ''} permanently deleted.", back=back)


@bp.route("/comments/<int:comment_id>/edit", methods=["GET", "POST"])
def edit(comment_id: int):
    """Edit a comment's author, text and status; the text before is kept as a revision."""
    back = safe_next()
    comment = comment_or_404(comment_id)
    form = CommentEditForm(data=None if request.method == "POST" else {
        "author": comment.author_name, "email": comment.author_email, "url": comment.author_url,
        "content": comment.content})
    if request.method == "GET":
        form.next.data = back
    if form.validate_on_submit():
        status = CommentStatus(form.status.data) if form.status.data else None
        changed = actions.edit(comment, actor(), content=form.content.data,
                               author=form.author.data, email=form.email.data or "",
                               url=form.url.data or "", status=status)
        db.session.commit()
        return _answer("Comment updated." if changed else "Nothing was changed.", comment,
                       back=back)
    if request.method == "POST":
        if wants_json():
            return _answer(_form_errors(form), comment, back=back, status=400, category="error")
        return render_template("admin/edit.html", form=form, comment=comment,
                               r=row_context(comment, generate_csrf())), 400
    return render_template("admin/edit.html", form=form, comment=comment,
                           r=row_context(comment, generate_csrf()))


@bp.post("/comments/<int:comment_id>/reply")
def reply(comment_id: int):
    """Reply to a comment as the signed-in admin, approving it first if it was held."""
    back = safe_next()
    parent = comment_or_404(comment_id)
    form = ReplyForm()
    if not form.validate_on_submit():
        return _answer("Type a reply first.", parent, back=back, status=400, category="error")
    try:
        comment = actions.reply(parent, actor(), form.content.data,
                                user_agent=request.user_agent.string)
    except service.CommentRejected as rejected:
        db.session.rollback()
        return _answer(rejected.message, parent, back=back, status=rejected.status,
                       category="error")
    db.session.commit()
    return _answer(f"Reply posted (comment {comment.id}).", parent, back=back)


@bp.get("/comments/<int:comment_id>/revisions")
def revisions(comment_id: int):
    """Show a comment's earlier versions and everything done to it."""
    comment = comment_or_404(comment_id)
    entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.comment_id == comment.id)
                                 .order_by(AuditEntry.id.desc())).all()
    return render_template("admin/revisions.html", comment=comment,
                           revisions=actions.revisions(comment), entries=entries)


# --- live ------------------------------------------------------------------------------------------

@bp.get("/live")
def live_stream():
    """Stream the queue's news (new held comments, changes, counts) as Server-Sent Events."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("after")
    try:
        after = int(raw) if raw not in (None, "") else None
    except ValueError:
        after = None
    deadline = session_deadline()
    app = current_app._get_current_object()
    db.session.remove()  # hold no pooled connection while the stream is open
    response = Response(live.queue_stream(app, after, deadline, live_row),
                        mimetype="text/event-stream", direct_passthrough=True)
    response.headers["Cache-Control"] = "no-cache, private"
    response.headers["X-Accel-Buffering"] = "no"
    return response


# --- Discussion settings ----------------------------------------------------------------------

SETTING_FIELDS = ("close_comments_for_old_posts", "close_comments_days_old", "comment_moderation",
                  "comment_max_links", "moderation_keys", "disallowed_keys",
                  "thread_comments_depth", "page_comments", "comments_per_page",
                  "default_comments_page", "comment_order", "require_name_email",
                  "comment_flood_seconds", "ban_action", "ban_plus_addresses",
                  "moderation_notify")


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    """Edit the Discussion settings."""
    form = DiscussionForm()
    if request.method == "GET":
        for name in SETTING_FIELDS:
            value = get_setting(name)
            if name in ("moderation_keys", "disallowed_keys"):
                value = "\n".join(value)
            elif name == "thread_comments_depth":
                value = str(value)
            getattr(form, name).data = value
    if form.validate_on_submit():
        changed = []
        for name in SETTING_FIELDS:
            value: Any = getattr(form, name).data
            if name in ("moderation_keys", "disallowed_keys"):
                value = rules.keyword_lines(value or "")
            elif name == "thread_comments_depth":
                value = int(value)
            if value != get_setting(name):
                set_setting(name, value)
                changed.append(name)
        if changed:
            AuditEntry.add(actor(), AuditAction.SETTINGS, None, changed=changed)
            fresh.pages_changed()
        db.session.commit()
        flash("Settings saved." if changed else "Nothing was changed.", "success")
        return redirect(url_for("admin.settings"), 303)
    posts = db.session.scalars(sa.select(Post).order_by(Post.published_at.desc())).all()
    return render_template("admin/settings.html", form=form, posts=posts,
                           closed_by_age=rules.closed_by_age, post_form=PostCommentsForm()), (
        400 if request.method == "POST" else 200)


@bp.post("/posts/<int:post_id>/comments")
def post_comments(post_id: int):
    """Open or close comments on one post."""
    post = db.get_or_404(Post, post_id)
    form = PostCommentsForm()
    if not form.validate_on_submit():
        abort(400)
    if post.comments_open != form.comments_open.data:
        post.comments_open = form.comments_open.data
        AuditEntry.add(actor(), AuditAction.OPEN_COMMENTS if post.comments_open
                       else AuditAction.CLOSE_COMMENTS, None, post_id=post.id, title=post.title)
        fresh.pages_changed()
    db.session.commit()
    flash(f"Comments are {'open' if post.comments_open else 'closed'} on “{post.title}”.", "success")
    return redirect(url_for("admin.settings") + "#posts", 303)


# --- bans ------------------------------------------------------------------------------------------

@bp.route("/bans", methods=["GET", "POST"])
def bans_page():
    """List the bans and add one (prefilled from a comment with `?comment=ID`)."""
    back = safe_next()
    form = BanForm()
    source = None
    if request.method == "GET" and request.args.get("comment", type=int):
        source = db.session.get(Comment, request.args.get("comment", type=int))
    if form.validate_on_submit():
        days = int(form.expires.data) if form.expires.data else None
        try:
            ban = bans.add(BanKind(form.kind.data), form.value.data, reason=form.reason.data or "",
                           expires_at=utcnow() + timedelta(days=days) if days else None,
                           by=current_user._get_current_object())
        except bans.InvalidBan as invalid:
            form.value.errors = [*form.value.errors, str(invalid)]
        else:
            AuditEntry.add(actor(), AuditAction.BAN, None, ban_id=ban.id, kind=ban.kind.value,
                          value=ban.value, expires_at=ban.expires_at.isoformat()
                          if ban.expires_at else None, reason=ban.reason)
            db.session.commit()
            flash(f"Banned {ban.kind.value} {ban.value}.", "success")
            return redirect(back or url_for("admin.bans_page"), 303)
    active = db.session.scalars(Ban.active()).all()
    expired = db.session.scalars(sa.select(Ban).where(Ban.expires_at <= utcnow())
                                 .order_by(Ban.expires_at.desc()).limit(50)).all()
    choices = _ban_choices(source) if source is not None else []
    return render_template("admin/bans.html", form=form, active=active, expired=expired,
                           source=source, choices=choices, empty=EmptyForm(),
                           ban_action=get_setting("ban_action")), (
        400 if request.method == "POST" else 200)


def _ban_choices(comment: Comment) -> list[tuple[str, str, str]]:
    """The ways to ban a comment's author: (kind, value, label)."""
    found: list[tuple[str, str, str]] = []
    if comment.author_email:
        found.append(("email", comment.author_email.lower(), f"Email {comment.author_email}"))
    if comment.user is not None:
        for account in comment.user.accounts:
            value = f"{account.provider}:{account.subject}"
            found.append(("account", value, f"{account.provider.capitalize()} account {value}"))
    if comment.ip:
        found.append(("ip", comment.ip, f"IP {comment.ip}"))
        try:
            network = bans.network_of(comment.ip)
            found.append(("ip", network, f"IP range {network}"))
        except ValueError:
            pass
    return found


@bp.post("/bans/<int:ban_id>/delete")
def unban(ban_id: int):
    """Lift a ban."""
    ban = db.get_or_404(Ban, ban_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    AuditEntry.add(actor(), AuditAction.UNBAN, None, ban_id=ban.id, kind=ban.kind.value,
                  value=ban.value)
    db.session.delete(ban)
    db.session.commit()
    flash(f"Lifted the ban on {ban.kind.value} {ban.value}.", "success")
    return redirect(url_for("admin.bans_page"), 303)


# --- audit log -------------------------------------------------------------------------------------

@bp.get("/audit")
def audit():
    """Show who did what to which comment, and when, newest first."""
    query = AuditEntry.newest()
    comment_id = request.args.get("comment", type=int)
    if comment_id:
        query = query.where(AuditEntry.comment_id == comment_id)
    page = db.paginate(query, page=request.args.get("page", 1, type=int), per_page=AUDIT_PER_PAGE,
                       error_out=False)
    return render_template("admin/audit.html", page=page, comment_id=comment_id)


# --- mail links ------------------------------------------------------------------------------------

MAIL_ACTION = {"approve": Action.APPROVE, "spam": Action.SPAM, "trash": Action.TRASH}


@bp.route("/mail/<token>", methods=["GET", "POST"])
def mail_action(token: str):
    """A moderator mail's link: confirm on GET, act on POST (the signed token stands in for a
    sign-in, and acts only while the comment is still as the mail described it)."""
    try:
        claim = notify.read_link(token)
    except BadLink as bad:
        return render_template("admin/mail_confirm.html", problem=str(bad)), 400
    comment = db.session.get(Comment, claim.comment_id)
    if comment is None or comment.stamp != claim.stamp:  # deleted (its id may be another's now)
        return render_template("admin/mail_confirm.html",
                               problem="That comment has been deleted."), 410
    form = EmptyForm()
    if comment.status.value != claim.status:
        return render_template("admin/mail_confirm.html", comment=comment, claim=claim,
                               done=f"Nothing to do: the comment is already {comment.status.value}."
                               ), 409
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        mail_actor = Actor(None, f"mail link to {claim.recipient}", request.remote_addr or "")
        actions.apply(comment, MAIL_ACTION[claim.action], mail_actor)
        db.session.commit()
        return render_template("admin/mail_confirm.html", comment=comment, claim=claim,
                               done=_done_message(MAIL_ACTION[claim.action], 1))
    return render_template("admin/mail_confirm.html", comment=comment, claim=claim, form=form,
                           label=MAIL_ACTION[claim.action].label)
