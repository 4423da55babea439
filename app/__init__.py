"""Parley: a self-hosted comment system for a blog."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from flask import Flask, g, request

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None, config_name: str | None = None) -> Flask:
    """Create and configure a Parley application."""
    from config import get_config

    load_dotenv(ROOT / ".env")
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    config = get_config("testing" if test_config and config_name is None else config_name)
    app.config.from_object(config)
    if test_config:
        app.config.update(test_config)
    config.init_app(app)

    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_helpers(app)
    register_page_cache(app)
    register_security(app)
    return app


def register_logging(app: Flask) -> None:
    """Log every request with its status and time, as an access log would."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("parley", "app"):
        logging.getLogger(name).setLevel(app.config["LOG_LEVEL"])
    log = logging.getLogger("parley.request")

    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        started = g.pop("request_started", None)
        if started is not None and log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %s %.1fms",
                request.method,
                request.full_path.rstrip("?"),
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        return response


def register_extensions(app: Flask) -> None:
    from app.database import configure_engine_events, install_after_commit
    from app.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    # Rate limits are shared by every worker and host through Redis when there is one, under
    # REDIS_PREFIX as the live broker's channels are: sites that share a Redis keep their own
    # counts (the limits library's own prefix, "LIMITS", would mix them).
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    if app.config.get("REDIS_URL"):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS",
                              {"key_prefix": f"{app.config['REDIS_PREFIX']}limits"})
    limiter.init_app(app)
    with app.app_context():
        configure_engine_events(db.engine)
    install_after_commit()

    from app import models
    from app.auth import oauth

    login_manager.user_loader(models.User.load)
    oauth.init_app(app)  # every sign-in provider, in an Authlib registry of this app's own


def register_blueprints(app: Flask) -> None:
    from app import admin
    from app.auth.views import bp as auth_bp
    from app.blog import bp as blog_bp
    from app.blog.feeds import bp as feeds_bp
    from app.comments.api import bp as api_bp
    from app.comments.views import bp as comments_bp
    from app.health import bp as health_bp
    from app.likes import bp as likes_bp
    from app.privacy import bp as privacy_bp
    from app.subscriptions.views import bp as subscriptions_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(blog_bp)
    app.register_blueprint(feeds_bp)
    app.register_blueprint(comments_bp)
    app.register_blueprint(api_bp)
    admin.init_app(app)
    app.register_blueprint(auth_bp)
    app.register_blueprint(subscriptions_bp)
    app.register_blueprint(likes_bp)
    app.register_blueprint(privacy_bp)


def register_errorhandlers(app: Flask) -> None:
    from app.errors import register

    register(app)


def register_commands(app: Flask) -> None:
    from app.auth.cli import users
    from app.commands import register

    register(app)
    app.cli.add_command(users)
    from app import wxr

    wxr.register(app)  # flask wxr import|export
    from app.spam import filter as spam_filter

    spam_filter.register(app)  # flask spam train|stats


def register_page_cache(app: Flask) -> None:
    """The fresh window in front of Flask (before ProxyFix wraps it, so it sees the real host)."""
    from app import fresh

    fresh.install(app)


def register_security(app: Flask) -> None:
    """Security headers on every response, and rate limits on posting and signing in."""
    from app import headers, limits

    headers.register(app)
    limits.register(app)


def register_template_helpers(app: Flask) -> None:
    from app.templating import register

    register(app)
