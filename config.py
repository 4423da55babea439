"""Parley's configuration, read from the environment (and a `.env` file when present).

Nothing here runs at import time: each class reads the environment when it is instantiated, so
tests and the factory can build as many configurations as they like.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from limits import parse_many

from app.auth import providers as _providers

# The NAMEs of the `<NAME>_CLIENT_ID`-style settings: one per record in app/auth/providers.py.
PROVIDERS = tuple(p.config_prefix for p in _providers.PROVIDERS)
PROVIDER_SETTINGS = (
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SERVER_METADATA_URL",
    "AUTHORIZE_URL",
    "ACCESS_TOKEN_URL",
    "API_BASE_URL",
)


# Readers for typed settings. An unset or empty variable gives the default; a value that does not
# parse stops Parley at start with a message naming the variable, not a ValueError's traceback.


def _invalid(name: str, raw: str, expected: str) -> RuntimeError:
    return RuntimeError(f"{name}={raw!r} is not valid: expected {expected}.")


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise _invalid(name, raw, "1, true, yes or on; or 0, false, no or off")


def _int(environ: Mapping[str, str], name: str, default: int, low: int = 0,
         high: int | None = None) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    expected = (f"a whole number from {low} to {high}" if high is not None
                else f"a whole number, {low} or more")
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, raw, expected) from None
    if value < low or (high is not None and value > high):
        raise _invalid(name, raw, expected)
    return value


def _seconds(environ: Mapping[str, str], name: str, default: float, zero: bool = False) -> float:
    """A duration in seconds: above 0, or 0 or more when *zero* means something ("never")."""
    raw = environ.get(name, "").strip()
    if not raw:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise _invalid(name, raw, "a number of seconds, " + ("0 or more" if zero else "above 0"))
    return value


def _rate(environ: Mapping[str, str], name: str, default: str) -> str:
    """A Flask-Limiter rate string such as "5 per minute;30 per hour"."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        parse_many(raw)
    except ValueError:
        raise _invalid(name, raw, 'rates such as "5 per minute;30 per hour"') from None
    return raw


def _http_base(environ: Mapping[str, str], name: str, default: str) -> str:
    """The address of an HTTP API, ending in "/" so that a verb can be added to it."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise _invalid(name, raw, "an http:// or https:// address")
    return raw if raw.endswith("/") else raw + "/"


def _timezone(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        ZoneInfo(raw)
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        raise _invalid(name, raw, "an IANA time zone such as Asia/Karachi") from None
    return raw


def _log_level(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if raw.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise _invalid(name, raw, "DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return raw.upper()


class Config:
    """Settings shared by every environment."""

    TESTING = False
    DEBUG = False
    PRODUCTION = False

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Read the settings from *environ* (by default, the process environment)."""
        environ = os.environ if environ is None else environ
        env = environ.get
        self.SECRET_KEY = env("SECRET_KEY") or None
        self.SQLALCHEMY_DATABASE_URI = env("DATABASE_URL") or None
        self.REDIS_URL = env("REDIS_URL") or None
        self.REDIS_PREFIX = env("REDIS_PREFIX", "parley:")
        # How often each process checks the event log for changes no broker announced
        # (the command line without Redis, a Redis outage), and how often streams send a heartbeat.
        self.LIVE_POLL_SECONDS = _seconds(environ, "LIVE_POLL_SECONDS", 2)
        self.LIVE_HEARTBEAT_SECONDS = _seconds(environ, "LIVE_HEARTBEAT_SECONDS", 15)
        self.BLOG_TITLE = env("BLOG_TITLE", "The Express Tribune Blogs")
        self.BLOG_TAGLINE = env("BLOG_TAGLINE", "News, views and reviews from Pakistan")
        self.BLOG_TIMEZONE = _timezone(environ, "BLOG_TIMEZONE", "Asia/Karachi")
        self.SITE_URL = (env("SITE_URL") or "").rstrip("/") or None
        self.ADMIN_EMAILS = [
            e.strip().lower() for e in env("ADMIN_EMAILS", "").split(",") if e.strip()
        ]
        # Admin sessions end this long after signing in, or after this long without a request.
        self.ADMIN_SESSION_LIFETIME = _seconds(environ, "ADMIN_SESSION_LIFETIME", 12 * 3600)
        self.ADMIN_IDLE_TIMEOUT = _seconds(environ, "ADMIN_IDLE_TIMEOUT", 2 * 3600)
        self.ADMIN_LOGIN_RATE_LIMIT = _rate(environ, "ADMIN_LOGIN_RATE_LIMIT",
                                            "5 per minute;30 per hour")
        # How often each process looks for new held comments while an admin queue is open.
        self.ADMIN_LIVE_POLL_SECONDS = _seconds(environ, "ADMIN_LIVE_POLL_SECONDS", 2)
        # How long the Approve/Trash/Spam links in moderator mail stay valid.
        self.MODERATION_LINK_MAX_AGE = _seconds(environ, "MODERATION_LINK_MAX_AGE", 3 * 24 * 3600)
        self.FACEBOOK_GRAPH_VERSION = env("FACEBOOK_GRAPH_VERSION", "v19.0")
        self.OAUTH_TIMEOUT = _seconds(environ, "OAUTH_TIMEOUT", 10)  # per provider request
        for name in PROVIDERS:
            for setting in PROVIDER_SETTINGS:
                key = f"{name}_{setting}"
                setattr(self, key, env(key) or None)
        self.MAIL_SERVER = env("MAIL_SERVER") or None  # unset: mail is logged, not sent
        # MAIL_USE_SSL speaks SSL from the first byte (SMTPS, port 465); MAIL_USE_TLS upgrades a
        # plain connection with STARTTLS (usually port 587). Asking for both is a mistake.
        self.MAIL_USE_TLS = _bool(environ, "MAIL_USE_TLS", False)
        self.MAIL_USE_SSL = _bool(environ, "MAIL_USE_SSL", False)
        if self.MAIL_USE_TLS and self.MAIL_USE_SSL:
            raise RuntimeError(
                "MAIL_USE_TLS and MAIL_USE_SSL are both on: set MAIL_USE_SSL for SMTP over SSL "
                "(usually port 465) or MAIL_USE_TLS for STARTTLS (usually port 587), not both."
            )
        self.MAIL_PORT = _int(environ, "MAIL_PORT", 465 if self.MAIL_USE_SSL else 25, 1, 65535)
        self.MAIL_USERNAME = env("MAIL_USERNAME") or None
        self.MAIL_PASSWORD = env("MAIL_PASSWORD") or None
        self.MAIL_FROM = env("MAIL_FROM") or "Parley <parley@localhost>"
        self.MAIL_TIMEOUT = _seconds(environ, "MAIL_TIMEOUT", 30)
        # Akismet (app/spam/akismet.py): on when AKISMET_KEY is set. AKISMET_API_URL points it at
        # any server that speaks Akismet's REST API; AKISMET_TIMEOUT bounds a poster's wait.
        self.AKISMET_KEY = env("AKISMET_KEY") or None
        self.AKISMET_API_URL = _http_base(environ, "AKISMET_API_URL", "https://rest.akismet.com/1.1/")
        self.AKISMET_TIMEOUT = _seconds(environ, "AKISMET_TIMEOUT", 3)
        self.LOG_LEVEL = _log_level(environ, "LOG_LEVEL", "INFO")
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
        self.RATELIMIT_ENABLED = _bool(environ, "RATELIMIT_ENABLED", True)
        self.RATELIMIT_POSTING = _rate(environ, "RATELIMIT_POSTING", "10 per minute;100 per hour")
        self.RATELIMIT_SIGNIN = _rate(environ, "RATELIMIT_SIGNIN", "20 per minute;100 per hour")
        # Mail someone else can make Parley send (like and subscription confirmations, the
        # privacy link), per recipient mailbox and per client IP; moderator mail about held
        # comments per commenter IP. Over a limit the request is answered as usual and the mail
        # is withheld (app/limits.py). Three an hour is more than a reader needs and too few to
        # flood anyone; an IP may be an office or a mobile carrier's NAT, so it gets more.
        self.MAIL_LIMIT_PER_ADDRESS = _rate(environ, "MAIL_LIMIT_PER_ADDRESS",
                                            "3 per hour;10 per day")
        self.MAIL_LIMIT_PER_IP = _rate(environ, "MAIL_LIMIT_PER_IP", "10 per hour;50 per day")
        # Live streams one client IP may hold open at once, per worker process (0: no cap).
        self.LIVE_MAX_STREAMS_PER_IP = _int(environ, "LIVE_MAX_STREAMS_PER_IP", 20)
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        # The requests in flight when Redis goes away would otherwise get the storage error (a
        # 500) before the fallback takes over: let them through instead, and log it.
        self.RATELIMIT_SWALLOW_ERRORS = True
        # Behind a reverse proxy, how many proxies' X-Forwarded-For/-Proto/-Host to trust.
        self.PROXY_COUNT = _int(environ, "PROXY_COUNT", 0)
        # Strict-Transport-Security max-age (whole seconds), sent on https responses only (0: never).
        self.SECURITY_HSTS_SECONDS = _int(environ, "SECURITY_HSTS_SECONDS", 365 * 24 * 3600)
        # Rendered article pages kept per process for anonymous readers (0: no page cache).
        self.PAGE_CACHE_SIZE = _int(environ, "PAGE_CACHE_SIZE", 64)
        # How long a worker answers a page it has just validated without asking the database
        # again (app/blog/fresh.py; 0: validate every request). Live streams replay what is newer.
        self.PAGE_CACHE_FRESH_SECONDS = _seconds(environ, "PAGE_CACHE_FRESH_SECONDS", 1, zero=True)

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

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(environ)
        self.SECRET_KEY = "testing-secret-key"
        self.SQLALCHEMY_DATABASE_URI = "sqlite://"
        self.REDIS_URL = None
        self.ADMIN_EMAILS = []
        self.RATELIMIT_ENABLED = True
        # Tests post many comments from one address; the limit tests set their own values.
        self.RATELIMIT_POSTING = "1000 per minute"
        self.RATELIMIT_SIGNIN = "1000 per minute"
        self.MAIL_LIMIT_PER_ADDRESS = "1000 per hour"
        self.MAIL_LIMIT_PER_IP = "1000 per hour"
        # Tests change the database from other apps and threads and read at once; the fresh
        # window's own tests turn it on.
        self.PAGE_CACHE_FRESH_SECONDS = 0


class ProductionConfig(Config):
    PRODUCTION = True

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(environ)
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
