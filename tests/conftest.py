"""Fixtures: an app per test on SQLite (always) and PostgreSQL (when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.commands import seed_article
from app.extensions import db

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")


def pytest_report_header(config):
    def state(url, variable):
        return f"ON ({url})" if url else f"OFF — {variable} is unset, so those tests SKIP"

    return [f"PostgreSQL: {state(TEST_DATABASE_URL, 'TEST_DATABASE_URL')}",
            f"Redis: {state(TEST_REDIS_URL, 'TEST_REDIS_URL')}"]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL database for this run, dropped at the end."""
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL tests skip: TEST_DATABASE_URL is not set")
    base = sa.make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg")
    name = f"parley_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url():
    if not TEST_REDIS_URL:
        pytest.skip("Redis tests skip: TEST_REDIS_URL is not set")
    return TEST_REDIS_URL


@pytest.fixture
def redis_prefix(redis_url):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    prefix = f"parley-test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


_pg_schema_ready: set[str] = set()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each test runs on SQLite, and again on PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'parley.db'}"
    return request.getfixturevalue("postgres_url")


_apps_of_this_test: list = []


def make_app(database_url: str, **config):
    settings = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url,
                "LIVE_POLL_SECONDS": 0.2}
    settings.update(config)
    app = create_app(settings)
    _apps_of_this_test.append(app)
    return app


@pytest.fixture(autouse=True)
def _close_every_app():
    """Close the connection pools of every app a test made, so none is left to the garbage
    collector (an open PostgreSQL connection found there is a ResourceWarning, an error here)."""
    yield
    from app.mail import get_mailer

    while _apps_of_this_test:
        app = _apps_of_this_test.pop()
        get_mailer(app).join(5)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def reset_database(app) -> None:
    """A fresh, empty schema: a new file on SQLite, emptied tables on PostgreSQL."""
    with app.app_context():
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        if db.engine.dialect.name == "postgresql":
            if url not in _pg_schema_ready:
                db.drop_all()
                db.create_all()
                _pg_schema_ready.add(url)
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.commit()
        else:
            db.create_all()


@pytest.fixture
def app(database_url):
    app = make_app(database_url)
    reset_database(app)
    with app.app_context():
        seed_article()
    yield app
    from app.mail import get_mailer

    get_mailer(app).join()  # mail jobs use the database: let them finish before it goes
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def post(app):
    from app.models import Post

    with app.app_context():
        p = db.session.scalar(sa.select(Post))
        return {"id": p.id, "slug": p.slug,
                "url": "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"}


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests skip: {CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def mailbox(database_url):
    """An app whose mail goes to a real SMTP server (aiosmtpd) on 127.0.0.1; yields (app, inbox)."""
    from app.settings import set_setting
    from tests.smtp import start_smtp

    controller, inbox, port = start_smtp()
    app = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=port,
                   MAIL_FROM="Parley <parley@example.com>")
    reset_database(app)
    with app.app_context():
        seed_article()
        set_setting("comment_flood_seconds", 0)
        set_setting("comment_moderation", "nobody")
        db.session.commit()
    yield app, inbox
    from app.mail import get_mailer

    get_mailer(app).join()
    controller.stop()
    with app.app_context():
        db.engine.dispose()
