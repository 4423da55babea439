"""Parley's configuration, read from the environment (and a `.env` file when present).

Nothing here runs at import time: each class reads the environment when it is instantiated, so
tests and the factory can build as many configurations as they like.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PROVIDERS = ("WORDPRESS", "GOOGLE", "TWITTER", "FACEBOOK")
PROVIDER_SETTINGS = (
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SERVER_METADATA_URL",
    "AUTHORIZE_URL",
    "ACCESS_TOKEN_URL",
    "API_BASE_URL",
)


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Settings shared by every environment."""

    TESTING = False
    DEBUG = False
    PRODUCTION = False

    def __init__(self) -> None:
        env = os.environ.get
        self.SECRET_KEY = env("SECRET_KEY") or None
        self.SQLALCHEMY_DATABASE_URI = env("DATABASE_URL") or None
        self.REDIS_URL = env("REDIS_URL") or None
        self.REDIS_PREFIX = env("REDIS_PREFIX", "parley:")
        # How often each process checks the event log for changes no broker announced
        # (the command line without Redis, a Redis outage), and how often streams send a heartbeat.
        self.LIVE_POLL_SECONDS = float(env("LIVE_POLL_SECONDS", "2"))
        self.LIVE_HEARTBEAT_SECONDS = float(env("LIVE_HEARTBEAT_SECONDS", "15"))
        self.BLOG_TITLE = env("BLOG_TITLE", "The Express Tribune Blogs")
        self.BLOG_TAGLINE = env("BLOG_TAGLINE", "News, views and reviews from Pakistan")
        self.BLOG_TIMEZONE = env("BLOG_TIMEZONE", "Asia/Karachi")
        self.SITE_URL = (env("SITE_URL") or "").rstrip("/") or None
        self.ADMIN_EMAILS = [
            e.strip().lower() for e in env("ADMIN_EMAILS", "").split(",") if e.strip()
        ]
        self.FACEBOOK_GRAPH_VERSION = env("FACEBOOK_GRAPH_VERSION", "v19.0")
        self.OAUTH_TIMEOUT = float(env("OAUTH_TIMEOUT", "10"))  # seconds, per provider request
        for name in PROVIDERS:
            for setting in PROVIDER_SETTINGS:
                key = f"{name}_{setting}"
                setattr(self, key, env(key) or None)
        self.MAIL_SERVER = env("MAIL_SERVER") or None
        self.MAIL_PORT = int(env("MAIL_PORT", "25"))
        self.MAIL_USE_TLS = _bool(env("MAIL_USE_TLS"))
        self.MAIL_USERNAME = env("MAIL_USERNAME") or None
        self.MAIL_PASSWORD = env("MAIL_PASSWORD") or None
        self.MAIL_FROM = env("MAIL_FROM", "Parley <parley@localhost>")
        self.LOG_LEVEL = env("LOG_LEVEL", "INFO")
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.MAX_CONTENT_LENGTH = 256 * 1024
        self.WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session
        # Rate limits (Flask-Limiter syntax), per client IP. Counters live in Redis when
        # REDIS_URL is set; if Redis goes away, each process counts in memory meanwhile rather
        # than failing the request.
        self.RATELIMIT_ENABLED = _bool(env("RATELIMIT_ENABLED"), True)
        self.RATELIMIT_POSTING = env("RATELIMIT_POSTING", "10 per minute;100 per hour")
        self.RATELIMIT_SIGNIN = env("RATELIMIT_SIGNIN", "20 per minute;100 per hour")
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        # The requests in flight when Redis goes away would otherwise get the storage error (a
        # 500) before the fallback takes over: let them through instead, and log it.
        self.RATELIMIT_SWALLOW_ERRORS = True
        # Behind a reverse proxy, how many proxies' X-Forwarded-For/-Proto/-Host to trust.
        self.PROXY_COUNT = int(env("PROXY_COUNT", "0"))
        # Strict-Transport-Security max-age, sent on https responses only (0: never).
        self.SECURITY_HSTS_SECONDS = int(env("SECURITY_HSTS_SECONDS", str(365 * 24 * 3600)))
        # Rendered article pages kept per process for anonymous readers (0: no page cache).
        self.PAGE_CACHE_SIZE = int(env("PAGE_CACHE_SIZE", "64"))
        # How long a worker answers a page it has just validated without asking the database
        # again (app/blog/fresh.py; 0: validate every request). Live streams replay what is newer.
        self.PAGE_CACHE_FRESH_SECONDS = float(env("PAGE_CACHE_FRESH_SECONDS", "1"))

    def init_app(self, app) -> None:
        """Fill in what depends on the instance folder; refuse unsafe production settings."""
        instance = Path(app.instance_path)
        if not app.config.get("SQLALCHEMY_DATABASE_URI"):
            instance.mkdir(parents=True, exist_ok=True)
            app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'parley.db'}"
        if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
            # A file has no server to drop the connection: pinging it costs a query per request.
            options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
            options["pool_pre_ping"] = False
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = _instance_secret(instance)


class DevelopmentConfig(Config):
    DEBUG = False  # the debugger stays off unless FLASK_DEBUG asks for it


class TestingConfig(Config):
    TESTING = True

    def __init__(self) -> None:
        super().__init__()
        self.SECRET_KEY = "testing-secret-key"
        self.SQLALCHEMY_DATABASE_URI = "sqlite://"
        self.REDIS_URL = None
        self.ADMIN_EMAILS = []
        self.RATELIMIT_ENABLED = True
        # Tests post many comments from one address; the limit tests set their own values.
        self.RATELIMIT_POSTING = "1000 per minute"
        self.RATELIMIT_SIGNIN = "1000 per minute"
        # Tests change the database from other apps and threads and read at once; the fresh
        # window's own tests turn it on.
        self.PAGE_CACHE_FRESH_SECONDS = 0


class ProductionConfig(Config):
    PRODUCTION = True

    def __init__(self) -> None:
        super().__init__()
        self.SESSION_COOKIE_SECURE = True
        self.REMEMBER_COOKIE_SECURE = True
        self.PREFERRED_URL_SCHEME = "https"

    def init_app(self, app) -> None:
        if not app.config.get("SECRET_KEY"):
            raise RuntimeError(
                "SECRET_KEY is not set. Production refuses to start without it: "
                "set SECRET_KEY in the environment (for example with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`)."
            )
        super().init_app(app)


def _instance_secret(instance: Path) -> str:
    """Return the development secret, generating it once into the instance folder."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        # O_EXCL so two workers starting together agree on one key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def get_config(name: str | None = None) -> Config:
    """Build the configuration named by *name* or by `PARLEY_ENV` (default: development)."""
    name = name or os.environ.get("PARLEY_ENV", "development")
    try:
        return CONFIGS[name]()
    except KeyError:
        raise RuntimeError(
            f"PARLEY_ENV={name!r} is not one of {', '.join(CONFIGS)}"
        ) from None
