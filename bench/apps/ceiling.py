"""The render ceiling: a bare Flask app rendering Parley's article template from memory.

It loads the post and its comments from the database once at start-up, then renders the very
same template with the same context on every request — no database, no Parley hooks (sessions,
sign-in, limits, logging). `BENCH_DATABASE_URL` names the database to load from.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from flask import Flask, render_template
from flask_login import AnonymousUserMixin

from app.models import Post


def _snapshot_post(post: Post) -> SimpleNamespace:
    values = {c.key: getattr(post, c.key) for c in post.__mapper__.column_attrs}
    return SimpleNamespace(**values)


def create_app() -> Flask:
    import sqlalchemy as sa

    from app import ROOT
    from app.blog import views as blog_views
    from app.comments.pages import comment_page
    from app.comments.threads import build_thread
    from app.extensions import db
    from app.models import Event
    from app.moderation.rules import accepts_comments
    from app.settings import get_setting
    from bench.seed import parley_app

    parley = parley_app(os.environ["BENCH_DATABASE_URL"])
    with parley.test_request_context("/"):
        post = db.session.scalar(sa.select(Post).order_by(Post.id))
        page = comment_page(post)
        comments = page.comments
        for comment in comments:  # everything the template reads is loaded; then detach
            _ = (comment.avatar_url, comment.author_link)
        context = {
            "post": _snapshot_post(post),
            "accepts_comments": accepts_comments(post),
            "comments": comments,
            "page": page,
            "depth": get_setting("thread_comments_depth"),
            "comment_count": page.total,
            "last_event_id": Event.last_id(post.id),
        }
        if hasattr(blog_views, "likers"):
            context["likers"] = blog_views.likers(post.id)
        db.session.expunge_all()
        db.session.remove()
        db.engine.dispose()

    app = Flask(__name__, template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"))
    app.config.update(parley.config)
    app.url_map = parley.url_map  # url_for() builds Parley's addresses; no Parley view runs
    app.jinja_env.globals.update(parley.jinja_env.globals)
    app.jinja_env.filters.update(parley.jinja_env.filters)
    app.template_context_processors[None][:0] = [
        f for f in parley.template_context_processors[None]
        if not f.__module__.startswith("flask_login")]  # an anonymous reader, without a session
    app.context_processor(lambda: {"current_user": AnonymousUserMixin()})
    # Parley's blog_globals context processor and filters read current_app.config only.

    def page(**_url_values):
        """The article with its 200 comments, rendered from memory."""
        extra = {"likers": context["likers"]} if "likers" in context else {}
        thread = build_thread(context["comments"], context["depth"])
        if context["page"].newest_first:
            thread.reverse()
        return render_template(
            "blog/post.html", post=context["post"], thread=thread, page=context["page"],
            held_ids=set(),
            comment_count=context["comment_count"], last_event_id=context["last_event_id"],
            **extra)

    # Answer at Parley's own addresses, so the page (its request.path included) is byte-identical.
    app.view_functions["blog.index"] = page
    app.view_functions["blog.permalink"] = page
    return app
