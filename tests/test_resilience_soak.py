"""The 30-second campaign and the faults (`make soak`; deselected from the default run).

These restart the machine's shared Redis and PostgreSQL, so they run only when asked for
(`pytest -m soak`), need TEST_REDIS_URL (and TEST_DATABASE_URL for PostgreSQL), and always
bring the services back in a `finally:`.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections import Counter

import pytest
import redis as redis_lib
import requests
import sqlalchemy as sa

from tests.conftest import TEST_DATABASE_URL
from tests.test_resilience import (
    account,
    close_all,
    gunicorn_site,
    kill_worker_while_streaming,
    open_readers,
    prepare_database,
    reader_workers,
    run_posters,
)

pytestmark = pytest.mark.soak

REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
               "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
               "--logfile", "/var/log/redis/ci.log"]


def _pg_cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                   check=False, capture_output=True, timeout=120)


@pytest.fixture
def soak_pg_url():
    """A throwaway PostgreSQL database of this test's own (NullPool: survives a restart)."""
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL soak skips: TEST_DATABASE_URL is not set")
    base = sa.make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg")
    name = f"parley_soak_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    _pg_cluster("start")  # whatever happened
    for _ in range(30):
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            break
        except sa.exc.OperationalError:
            time.sleep(1)
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def soak_database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'soak.db'}"
    return request.getfixturevalue("soak_pg_url")


def test_soak_32_posters_30_seconds_3_workers(soak_database, redis_url, redis_prefix, tmp_path):
    slugs = prepare_database(soak_database, fresh_posts=64)
    with gunicorn_site(soak_database, 3, tmp_path, redis_url=redis_url,
                       redis_prefix=redis_prefix) as site:
        readers = open_readers(site, slugs, per_post=2, article_readers=6)
        try:
            assert set(site.worker_pids()) <= set(reader_workers(site, readers))
            campaign = run_posters(site, slugs, posters=32, seconds=30, rounds=4)
            figures = account(soak_database, campaign, readers, timeout=60)
        finally:
            close_all(readers)
    assert figures["5xx"] == 0 and set(campaign.statuses) == {201}, campaign.statuses
    assert {s for s in campaign.accepted.values()} >= set(slugs[1:])  # every fresh post


def test_soak_worker_killed_while_streaming(soak_database, redis_url, redis_prefix, tmp_path):
    figures = kill_worker_while_streaming(soak_database, tmp_path, workers=3, posters=16,
                                          seconds=12, redis_url=redis_url,
                                          redis_prefix=redis_prefix)
    print(f"worker kill: {figures}")


def _redis_up(url: str) -> bool:
    try:
        client = redis_lib.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        ok = client.ping()
        client.close()
        return bool(ok)
    except redis_lib.RedisError:
        return False


def test_redis_restart_live_updates_resume_and_posting_continues(
        tmp_path, redis_url, redis_prefix):
    """Redis shut down for ~4 s mid-campaign, then started again; rate limits ON (high), so the
    limiter's storage goes through the outage too. Polling is slowed to 30 s, so what arrives
    within seconds after the restart came back through Redis, not through the fallback."""
    database = f"sqlite:///{tmp_path / 'redis.db'}"
    slugs = prepare_database(database, fresh_posts=8)
    with gunicorn_site(database, 3, tmp_path, redis_url=redis_url, redis_prefix=redis_prefix,
                       LIVE_POLL_SECONDS="30", RATELIMIT_ENABLED="true",
                       RATELIMIT_POSTING="100000 per minute") as site:
        readers = open_readers(site, slugs, per_post=1, article_readers=6)
        channel = f"{redis_prefix}live"
        restarted_at = resubscribed_at = None
        try:
            def outage() -> None:
                nonlocal restarted_at, resubscribed_at
                time.sleep(3)
                subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True,
                               timeout=30)
                time.sleep(4)
                subprocess.run(REDIS_START, check=True, capture_output=True, timeout=30)
                restarted_at = time.monotonic()
                client = redis_lib.Redis.from_url(redis_url)
                for _ in range(600):  # every worker subscribed again, by itself
                    if dict(client.pubsub_numsub(channel)).get(channel.encode()) == 3:
                        resubscribed_at = time.monotonic()
                        break
                    time.sleep(0.05)
                client.close()

            fault = threading.Thread(target=outage, daemon=True)
            fault.start()
            campaign = run_posters(site, slugs, posters=16, seconds=14, rounds=2)
            fault.join(60)
            assert restarted_at is not None
            assert resubscribed_at is not None, (
                "the workers did not all subscribe again within 30 s of the restart "
                f"(Redis answering now: {_redis_up(redis_url)})")
            figures = account(database, campaign, readers, timeout=45)
            # after the restart, one more comment reaches every reader of the article quickly
            session = requests.Session()
            token = session.get(site.url + "/api/session", timeout=10).json()["csrf_token"]
            sent = time.monotonic()
            probe = session.post(f"{site.url}/api/posts/{slugs[0]}/comments",
                                 json={"comment": f"Load {campaign.tag} probe", "author": "Probe",
                                       "email": "probe@example.com"},
                                 headers={"X-CSRFToken": token}, timeout=10).json()["comment"]["id"]
            while time.monotonic() - sent < 10 and not all(
                    probe in r.created for r in readers[slugs[0]]):
                time.sleep(0.02)
            probe_delay = time.monotonic() - sent
        finally:
            if not _redis_up(redis_url):
                subprocess.run(REDIS_START, check=False, capture_output=True, timeout=30)
            close_all(readers)
    during = [s for t, s in campaign.timeline if restarted_at - 4 < t < restarted_at]
    print(f"redis restart: {figures}, resubscribed {resubscribed_at - restarted_at:.2f}s after the "
          f"restart, probe delivered in {probe_delay:.3f}s, during the outage: "
          f"{dict(Counter(during))}")
    assert figures["5xx"] == 0, campaign.statuses
    assert during.count(201) > 0  # posting kept working while Redis was away
    assert resubscribed_at is not None and resubscribed_at - restarted_at < 10
    assert probe_delay < 1.5


def test_postgres_restart_answers_503_then_recovers(soak_pg_url, tmp_path, redis_url,
                                                    redis_prefix):
    """PostgreSQL stopped for ~5 s mid-campaign: requests fail cleanly (503, never 500) and
    work again afterwards without restarting Parley; readers miss nothing."""
    slugs = prepare_database(soak_pg_url, fresh_posts=8)
    with gunicorn_site(soak_pg_url, 3, tmp_path, redis_url=redis_url,
                       redis_prefix=redis_prefix) as site:
        readers = open_readers(site, slugs, per_post=1, article_readers=6)
        marks: dict[str, float] = {}
        try:
            def outage() -> None:
                time.sleep(3)
                marks["stop"] = time.monotonic()
                _pg_cluster("stop")
                marks["stopped"] = time.monotonic()
                time.sleep(5)
                marks["starting"] = time.monotonic()  # PostgreSQL answers before start returns
                _pg_cluster("start")
                marks["started"] = time.monotonic()

            fault = threading.Thread(target=outage, daemon=True)
            fault.start()
            campaign = run_posters(site, slugs, posters=16, seconds=18, rounds=2,
                                   allowed_5xx=(503,))
            fault.join(120)
            health = requests.get(site.url + "/healthz", timeout=10).status_code
            figures = account(soak_pg_url, campaign, readers, timeout=45, lost_answers_ok=True)
        finally:
            _pg_cluster("start")
            close_all(readers)
    during = Counter(s for t, s in campaign.timeline if marks["stopped"] < t < marks["starting"])
    after = [t for t, s in campaign.timeline if t > marks["started"] and s == 201]
    recovery = after[0] - marks["started"] if after else None
    print(f"postgres restart: {figures}, during the outage {dict(during)}, first 201 "
          f"{recovery}s after the start, healthz afterwards {health}")
    assert 500 not in campaign.statuses and 502 not in campaign.statuses, campaign.statuses
    assert set(during) <= {503}, during  # failed cleanly: 503 (with Retry-After), never 500
    assert during[503] > 0
    assert recovery is not None and recovery < 10
    assert health == 200

