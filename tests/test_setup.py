"""Operating Parley: migrations that match the models, configuration, the database settings."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app import create_app
from app.comments.content import render
from app.extensions import db
from app.models import text_digest
from config import _instance_secret
from tests.conftest import make_app


def _empty_database(database_url: str) -> None:
    from tests import conftest

    conftest._pg_schema_ready.discard(database_url)  # the next test builds the schema again
    app = make_app(database_url)
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("DROP TYPE IF EXISTS comment_status"))
        db.engine.dispose()


def test_flask_db_upgrade_reproduces_the_models_exactly(database_url):
    _empty_database(database_url)
    app = make_app(database_url)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert diff == [], f"migrations and models differ: {diff}"
    # and the seed loads onto the migrated schema
    assert app.test_cli_runner().invoke(args=["seed"]).exit_code == 0
    _empty_database(database_url)


def test_the_migrations_fill_in_what_existing_comments_need(database_url):
    _empty_database(database_url)
    app = make_app(database_url)
    cli = app.test_cli_runner()
    assert cli.invoke(args=["db", "upgrade", "b41c2d9e7a10"]).exit_code == 0  # the one before
    assert cli.invoke(args=["seed"]).exit_code == 0  # the article and its approved comment
    with app.app_context():
        db.session.execute(sa.text(
            "INSERT INTO comments (post_id, author_name, author_email, author_url, content, "
            "content_html, status, notify, ip, user_agent, created_at, updated_at) "
            "SELECT id, 'A', '', '', 'x', 'x', :status, false, '', '', published_at, "
            "published_at FROM posts"), [{"status": "approved"}, {"status": "pending"}])
        db.session.commit()
    assert cli.invoke(args=["db", "upgrade"]).exit_code == 0
    with app.app_context():
        assert db.session.execute(sa.text("SELECT approved FROM comment_counts")).all() == [(2,)]
        db.session.execute(sa.text("UPDATE comments SET status = 'trash' WHERE content = 'x'"))
        db.session.commit()  # and the triggers keep it from then on
        assert db.session.execute(sa.text("SELECT approved FROM comment_counts")).all() == [(1,)]
        db.session.remove()
    # the text digests the duplicate check looks comments up by, for comments already there
    assert cli.invoke(args=["db", "downgrade", "7e5ea36f7901"]).exit_code == 0
    assert cli.invoke(args=["db", "upgrade"]).exit_code == 0
    with app.app_context():
        rows = db.session.execute(sa.text("SELECT content, content_hash FROM comments")).all()
        assert len(rows) == 3 and all(digest == text_digest(text) for text, digest in rows)
        db.session.remove()
    _empty_database(database_url)


def test_the_upgrade_renders_stored_comments_again_with_todays_rules(database_url):
    """HTML stored under the old rules hid the text after an unclosed <script> and kept a
    javascript: cite; `flask db upgrade` makes it again from the stored text."""
    _empty_database(database_url)
    app = make_app(database_url)
    cli = app.test_cli_runner()
    assert cli.invoke(args=["db", "upgrade", "f3c8a1d6b2e4"]).exit_code == 0  # the one before
    assert cli.invoke(args=["seed"]).exit_code == 0
    old = {"a <script> b c d": "<p>a &lt;script&gt;</p>",
           '<blockquote cite="javascript:alert(1)">quoted</blockquote>':
               '<blockquote cite="javascript:alert(1)">quoted</blockquote>'}
    with app.app_context():
        for content, html in old.items():
            db.session.execute(sa.text(
                "INSERT INTO comments (post_id, author_name, author_email, author_url, content, "
                "content_html, status, notify, ip, user_agent, created_at, updated_at) "
                "SELECT id, 'A', '', '', :content, :html, 'approved', false, '', '', "
                "published_at, published_at FROM posts"), {"content": content, "html": html})
        db.session.commit()
    assert cli.invoke(args=["db", "upgrade"]).exit_code == 0
    with app.app_context():
        stored = dict(db.session.execute(sa.text(
            "SELECT content, content_html FROM comments")).all())
        db.session.remove()
    assert "b c d" in stored["a <script> b c d"]
    assert "javascript" not in stored['<blockquote cite="javascript:alert(1)">quoted</blockquote>']
    assert all(html == render(content) for content, html in stored.items())
    _empty_database(database_url)


def test_sqlite_runs_with_wal_busy_timeout_and_foreign_keys(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'p.db'}")
    with app.app_context():
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        db.engine.dispose()


def test_default_database_is_sqlite_in_the_instance_folder(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app(config_name="development")
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    assert uri.startswith("sqlite:///") and uri.endswith("instance/parley.db")


def test_production_refuses_to_start_without_a_secret(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app(config_name="production")
    monkeypatch.setenv("SECRET_KEY", "s3cret-for-this-test")
    app = create_app(config_name="production")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True and app.config["PRODUCTION"] is True


def test_development_secret_is_generated_once(tmp_path):
    first = _instance_secret(tmp_path)
    assert len(first) == 64
    assert _instance_secret(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_environment_configures_the_blog(monkeypatch):
    monkeypatch.setenv("BLOG_TITLE", "Dawn Blogs")
    monkeypatch.setenv("ADMIN_EMAILS", " Editor@Example.com, ops@example.com ,")
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    app = create_app(config_name="development")
    assert app.config["BLOG_TITLE"] == "Dawn Blogs"
    assert app.config["ADMIN_EMAILS"] == ["editor@example.com", "ops@example.com"]


def test_unknown_environment_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PARLEY_ENV", "staging")
    with pytest.raises(RuntimeError, match="PARLEY_ENV='staging'"):
        create_app()


def test_requests_are_logged(client, caplog):
    caplog.set_level("INFO", logger="parley.request")
    client.get("/healthz")
    assert any("GET /healthz 200" in r.getMessage() for r in caplog.records)


def test_health_reports_an_unreachable_database(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "unreachable"
