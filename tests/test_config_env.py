"""Every setting the README documents is read from the environment into app.config, typed.

The README is the operator's contract: this walks its tables headed "variable" and every
backticked NAME_WITH_UNDERSCORES in its prose, and for each one sets the variable, builds the app
the way gunicorn does (`create_app()`, the environment alone) and checks `app.config`. The few
variables that are not Parley's settings (`scripts/serve`'s, the test suite's) are checked where
they are read instead.
"""

from __future__ import annotations

import re
import ssl
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import app as parley
from app import create_app
from app.extensions import db
from app.mail import Mail, get_mailer
from config import PROVIDERS, DevelopmentConfig
from tests.test_mail import Inbox, free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SETTING = re.compile(r"`(<NAME>_[A-Z0-9_]+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`")
CELL_NAME = re.compile(r"`([^`]+)`")


def readme_providers(text: str) -> tuple[str, ...]:
    """The NAMEs the README gives for `<NAME>_...` ("NAME = `WORDPRESS`, `GOOGLE`, ...")."""
    found = re.search(r"NAME = ((?:`[A-Z]+`(?:,\s*)?)+)", text)
    assert found, "README no longer says which NAMEs `<NAME>_CLIENT_ID` stands for"
    return tuple(CELL_NAME.findall(found.group(1)))


def readme_variables(text: str) -> set[str]:
    """Names in the first column of tables headed "variable", and settings named in prose."""
    names: set[str] = set()
    in_fence = in_table = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            in_table = False
        elif cells[0] == "variable":
            in_table = True
        elif in_table:
            names.update(CELL_NAME.findall(cells[0]))  # HOST, PORT: no underscore to go by
        names.update(SETTING.findall(line))
    providers = readme_providers(text)
    return {expanded for name in names
            for expanded in ([name.replace("<NAME>", p) for p in providers]
                             if name.startswith("<NAME>_") else [name])}


DOCUMENTED = readme_variables(README)

# What each documented setting is set to here, the app.config key it lands in, and the typed
# value expected there; every value differs from the default.
CASES: dict[str, tuple[str, str, object]] = {
    "SECRET_KEY": ("a-secret-from-the-environment", "SECRET_KEY", "a-secret-from-the-environment"),
    "PARLEY_ENV": ("production", "PRODUCTION", True),
    "DATABASE_URL": ("sqlite://", "SQLALCHEMY_DATABASE_URI", "sqlite://"),
    "REDIS_URL": ("redis://redis.invalid:6379/3", "REDIS_URL", "redis://redis.invalid:6379/3"),
    "REDIS_PREFIX": ("blog2:", "REDIS_PREFIX", "blog2:"),
    "BLOG_TITLE": ("Dawn Blogs", "BLOG_TITLE", "Dawn Blogs"),
    "BLOG_TAGLINE": ("Opinion from Karachi", "BLOG_TAGLINE", "Opinion from Karachi"),
    "BLOG_TIMEZONE": ("Europe/London", "BLOG_TIMEZONE", "Europe/London"),
    "LOG_LEVEL": ("warning", "LOG_LEVEL", "WARNING"),
    "PROXY_COUNT": ("2", "PROXY_COUNT", 2),
    "SECURITY_HSTS_SECONDS": ("600", "SECURITY_HSTS_SECONDS", 600),
    "RATELIMIT_POSTING": ("3 per minute", "RATELIMIT_POSTING", "3 per minute"),
    "RATELIMIT_SIGNIN": ("4 per minute;9 per hour", "RATELIMIT_SIGNIN", "4 per minute;9 per hour"),
    "RATELIMIT_ENABLED": ("false", "RATELIMIT_ENABLED", False),
    "MAIL_LIMIT_PER_ADDRESS": ("1 per hour", "MAIL_LIMIT_PER_ADDRESS", "1 per hour"),
    "MAIL_LIMIT_PER_IP": ("5 per hour;20 per day", "MAIL_LIMIT_PER_IP", "5 per hour;20 per day"),
    "LIVE_MAX_STREAMS_PER_IP": ("0", "LIVE_MAX_STREAMS_PER_IP", 0),
    "LIVE_POLL_SECONDS": ("0.5", "LIVE_POLL_SECONDS", 0.5),
    "LIVE_HEARTBEAT_SECONDS": ("30", "LIVE_HEARTBEAT_SECONDS", 30.0),
    "SITE_URL": ("https://blog.example.com/", "SITE_URL", "https://blog.example.com"),
    "FACEBOOK_GRAPH_VERSION": ("v21.0", "FACEBOOK_GRAPH_VERSION", "v21.0"),
    "OAUTH_TIMEOUT": ("4.5", "OAUTH_TIMEOUT", 4.5),
    "ADMIN_EMAILS": (" Editor@Example.com, ops@example.com ,", "ADMIN_EMAILS",
                     ["editor@example.com", "ops@example.com"]),
    "ADMIN_SESSION_LIFETIME": ("3600", "ADMIN_SESSION_LIFETIME", 3600.0),
    "ADMIN_IDLE_TIMEOUT": ("900", "ADMIN_IDLE_TIMEOUT", 900.0),
    "ADMIN_LOGIN_RATE_LIMIT": ("3 per minute", "ADMIN_LOGIN_RATE_LIMIT", "3 per minute"),
    "ADMIN_LIVE_POLL_SECONDS": ("0.5", "ADMIN_LIVE_POLL_SECONDS", 0.5),
    "MODERATION_LINK_MAX_AGE": ("86400", "MODERATION_LINK_MAX_AGE", 86400.0),
    "MAIL_SERVER": ("smtp.example.com", "MAIL_SERVER", "smtp.example.com"),
    "MAIL_PORT": ("587", "MAIL_PORT", 587),
    "MAIL_USE_TLS": ("yes", "MAIL_USE_TLS", True),
    "MAIL_USE_SSL": ("1", "MAIL_USE_SSL", True),
    "MAIL_USERNAME": ("parley", "MAIL_USERNAME", "parley"),
    "MAIL_PASSWORD": ("hunter2", "MAIL_PASSWORD", "hunter2"),
    "MAIL_FROM": ("Dawn <comments@dawn.example>", "MAIL_FROM", "Dawn <comments@dawn.example>"),
    "MAIL_TIMEOUT": ("5", "MAIL_TIMEOUT", 5.0),
    "PAGE_CACHE_SIZE": ("8", "PAGE_CACHE_SIZE", 8),
    "PAGE_CACHE_FRESH_SECONDS": ("0", "PAGE_CACHE_FRESH_SECONDS", 0.0),
    "AKISMET_KEY": ("0123abcd4567", "AKISMET_KEY", "0123abcd4567"),
    # the trailing "/" is added, so that a verb can follow
    "AKISMET_API_URL": ("http://127.0.0.1:8321/akismet/1.1", "AKISMET_API_URL",
                        "http://127.0.0.1:8321/akismet/1.1/"),
    "AKISMET_TIMEOUT": ("0.5", "AKISMET_TIMEOUT", 0.5),
}
for _provider in PROVIDERS:
    for _setting, _value in (("CLIENT_ID", "an-id"), ("CLIENT_SECRET", "a-secret"),
                             ("SERVER_METADATA_URL", "https://id.example/.well-known/openid"),
                             ("AUTHORIZE_URL", "https://id.example/authorize"),
                             ("ACCESS_TOKEN_URL", "https://id.example/token"),
                             ("API_BASE_URL", "https://id.example/api/")):
        _name = f"{_provider}_{_setting}"
        CASES[_name] = (f"{_provider.lower()}-{_value}", _name, f"{_provider.lower()}-{_value}")

# Not Parley's settings: read by scripts/serve (with the README's defaults) ...
SERVE = {"HOST": "127.0.0.1", "PORT": "8000", "WORKERS": "1"}
# ... by scripts/cluster (which reads HOST, PORT and WORKERS too) ...
CLUSTER = {"HOST_A_PORT": "8001", "HOST_B_PORT": "8002"}
# ... and by the test suite.
SUITE = {"TEST_DATABASE_URL", "TEST_REDIS_URL"}


@pytest.fixture
def environment(monkeypatch) -> None:
    """An environment holding none of the documented variables, and no `.env` to add them back."""
    for name in DOCUMENTED | set(CASES):
        monkeypatch.delenv(name, raising=False)
    # create_app() loads ROOT/.env into os.environ, where monkeypatch would not undo it.
    monkeypatch.setattr(parley, "load_dotenv", lambda *args, **kwargs: False)


def build(monkeypatch, tmp_path, **variables: str):
    """`create_app()` from the environment plus *variables*, as gunicorn would build it.

    SECRET_KEY and DATABASE_URL are set unless given, so nothing is written to instance/.
    """
    base = {"SECRET_KEY": "environment-test", "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    for name, value in (base | variables).items():
        monkeypatch.setenv(name, value)
    app = create_app()
    with app.app_context():
        db.engine.dispose()
    return app


def test_the_readme_is_read_as_expected():
    assert readme_providers(README) == PROVIDERS
    assert {"MAIL_USE_SSL", "HOST", "GOOGLE_CLIENT_ID", "ADMIN_IDLE_TIMEOUT"} <= DOCUMENTED
    assert "PUT" not in DOCUMENTED and "WORDPRESS" not in DOCUMENTED


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_each_documented_variable_changes_the_app_config(name, environment, monkeypatch,
                                                         tmp_path):
    if name in SERVE:
        serve = (ROOT / "scripts" / "serve").read_text()
        assert f"{name}=${{{name}:-{SERVE[name]}}}" in serve
        command = serve[serve.index("exec .venv/bin/gunicorn"):]
        assert f"${name}" in command, f"scripts/serve reads {name} but does not pass it on"
        return
    if name in CLUSTER:
        cluster = (ROOT / "scripts" / "cluster").read_text()
        assert f"{name}=${{{name}:-{CLUSTER[name]}}}" in cluster
        assert cluster.count(f"${name}") > 1, f"scripts/cluster reads {name} but never uses it"
        return
    if name in SUITE:
        assert f'os.environ.get("{name}")' in (ROOT / "tests" / "conftest.py").read_text()
        return
    if name not in CASES:
        pytest.fail(f"README documents {name}: add a case for it here")
    value, key, expected = CASES[name]
    default = getattr(DevelopmentConfig(), key)
    assert default != expected, f"the case for {name} must differ from its default"
    app = build(monkeypatch, tmp_path, **{name: value})
    assert app.config[key] == expected
    assert type(app.config[key]) is type(expected)


def test_every_case_is_documented():
    assert set(CASES) - DOCUMENTED == set()


class Recording(dict):
    """An environment that remembers which names were asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, name, default=None):
        self.asked.add(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self.asked.add(name)
        return super().__getitem__(name)


def test_config_reads_nothing_the_readme_leaves_out():
    environ = Recording({})
    DevelopmentConfig(environ)
    assert environ.asked - DOCUMENTED == set()
    assert environ.asked >= set(CASES) - {"PARLEY_ENV"}  # PARLEY_ENV picks the class


def test_defaults_of_the_admin_and_mail_settings():
    config = DevelopmentConfig({})
    assert config.ADMIN_SESSION_LIFETIME == 12 * 3600
    assert config.ADMIN_IDLE_TIMEOUT == 2 * 3600
    assert config.ADMIN_LOGIN_RATE_LIMIT == "5 per minute;30 per hour"
    assert config.ADMIN_LIVE_POLL_SECONDS == 2
    assert config.MODERATION_LINK_MAX_AGE == 3 * 24 * 3600
    assert (config.MAIL_PORT, config.MAIL_USE_TLS, config.MAIL_USE_SSL) == (25, False, False)
    assert config.MAIL_TIMEOUT == 30
    assert DevelopmentConfig({"MAIL_USE_SSL": "on"}).MAIL_PORT == 465


@pytest.mark.parametrize(("name", "value"), [
    ("MAIL_PORT", "abc"),
    ("MAIL_PORT", "70000"),
    ("MAIL_USE_SSL", "maybe"),
    ("ADMIN_IDLE_TIMEOUT", "2h"),
    ("ADMIN_SESSION_LIFETIME", "0"),
    ("MODERATION_LINK_MAX_AGE", "-1"),
    ("LIVE_POLL_SECONDS", "nan"),
    ("PAGE_CACHE_SIZE", "-1"),
    ("PROXY_COUNT", "one"),
    ("ADMIN_LOGIN_RATE_LIMIT", "five a minute"),
    ("RATELIMIT_POSTING", "10 per fortnight"),
    ("MAIL_LIMIT_PER_IP", "ten an hour"),
    ("LIVE_MAX_STREAMS_PER_IP", "-1"),
    ("BLOG_TIMEZONE", "Mars/Olympus_Mons"),
    ("LOG_LEVEL", "LOUD"),
    ("AKISMET_API_URL", "rest.akismet.com/1.1/"),
    ("AKISMET_TIMEOUT", "0"),
])
def test_a_bad_value_stops_the_start_naming_the_variable(name, value, environment, monkeypatch,
                                                        tmp_path):
    with pytest.raises(RuntimeError, match=rf"^{name}=") as raised:
        build(monkeypatch, tmp_path, **{name: value})
    assert repr(value) in str(raised.value)
    shown = "".join(traceback.format_exception(raised.value))  # what the operator reads
    assert "ValueError" not in shown and "During handling" not in shown


def test_tls_and_ssl_together_are_refused(environment, monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="MAIL_USE_TLS and MAIL_USE_SSL"):
        build(monkeypatch, tmp_path, MAIL_USE_TLS="1", MAIL_USE_SSL="1")


# --- MAIL_USE_SSL reaches the mailer ----------------------------------------------------------

def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a throwaway certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(hours=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


class TLSInbox(Inbox):
    """Keeps what arrives, and whether it arrived over SSL."""

    def __init__(self) -> None:
        super().__init__()
        self.encrypted: list[bool] = []

    async def handle_DATA(self, server, session, envelope):
        self.encrypted.append(server.transport.get_extra_info("ssl_object") is not None)
        return await super().handle_DATA(server, session, envelope)


def test_mail_use_ssl_sends_over_smtps(environment, monkeypatch, tmp_path):
    """MAIL_USE_SSL=1 in the environment: the mail goes to an SMTPS-only server, encrypted."""
    inbox = TLSInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            ssl_context=_self_signed(tmp_path))
    controller.start()
    try:
        app = build(monkeypatch, tmp_path, MAIL_SERVER="127.0.0.1",
                    MAIL_PORT=str(controller.port), MAIL_USE_SSL="1", MAIL_TIMEOUT="5")
        get_mailer(app).deliver(Mail(("ops@example.com",), "Over SSL", "Hello."))
        assert inbox.arrived.wait(5), "nothing arrived at the SMTPS server"
    finally:
        controller.stop()
    assert inbox.encrypted == [True]
    assert inbox.messages[0][1]["Subject"] == "Over SSL"
