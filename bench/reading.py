"""Reading: the article page with N approved comments, Parley against its ceilings and Isso."""

from __future__ import annotations

from pathlib import Path

from bench import common, seed

ISSO_THREAD = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"


def run(tmp: Path, *, comments: int, workers: int, seconds: float, connections: int,
        database_url: str | None = None) -> dict:
    database_url = database_url or f"sqlite:///{tmp / 'reading.db'}"
    seed.seed_parley(database_url, comments)
    page = common.PERMALINK
    results: dict[str, dict] = {}
    env = common.parley_env(database_url, BENCH_TMP=str(tmp))

    def measure(name: str, url: str, headers: dict | None = None, check: bytes | None = None):
        status, body, _ = common.get(url, headers)
        if status not in (200, 304) or (check is not None and check not in body):
            raise RuntimeError(f"{name}: {url} answered {status}")
        common.warm(url, 30, headers)
        results[name] = common.wrk(url, seconds, connections, headers)
        results[name]["bytes"] = len(body)
        print(f"  {name:<34} {results[name]['rps']:>9.1f} req/s", flush=True)

    marker = f"Reader {comments - 1}".encode()
    with common.gunicorn("app:create_app()", {**env, "PAGE_CACHE_SIZE": "0"}, workers,
                         name="parley-nocache") as server:
        measure("parley_uncached", server.url + page, check=marker)
    with common.gunicorn("app:create_app()", env, workers, name="parley") as server:
        measure("parley_cached", server.url + page, check=marker)
        _, _, headers = common.get(server.url + page)
        measure("parley_304", server.url + page, {"If-None-Match": headers["ETag"]})
    with common.gunicorn("bench.apps.ceiling:create_app()", {**env, "BENCH_DATABASE_URL": database_url},
                         workers, name="ceiling") as server:
        measure("render_ceiling", server.url + page, check=marker)
    with common.gunicorn("bench.apps.hello:app", env, workers, name="hello") as server:
        measure("server_ceiling", server.url + "/")
    with isso_server(tmp, workers) as server:
        seed.seed_isso(server.url, ISSO_THREAD, comments)
        measure("isso_listing", f"{server.url}/?uri={ISSO_THREAD}", check=marker)
    return results


def isso_server(tmp: Path, workers: int):
    """Isso under the same gunicorn settings, from its own virtualenv, on a fresh database."""
    python = common.ISSO_VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError("Isso is not installed: run bench/run (it creates bench/.venv-isso)")
    port = common.free_port()
    db_path = tmp / f"isso-{port}.db"
    cfg = tmp / f"isso-{port}.cfg"
    cfg.write_text(seed.ISSO_CFG.format(dbpath=db_path, host=f"http://127.0.0.1:{port}"))
    env = {"ISSO_SETTINGS": str(cfg), "PATH": "/usr/bin:/bin", "BENCH_TMP": str(tmp)}
    return _isso(port, env, workers, db_path)


def _isso(port: int, env: dict, workers: int, db_path: Path):
    import contextlib
    import os
    import subprocess

    @contextlib.contextmanager
    def serve():
        exe = common.ISSO_VENV / "bin" / "gunicorn"
        log = Path(env["BENCH_TMP"]) / f"isso-{port}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(exe), "isso.run", "-k", "gevent", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                 "--worker-connections", "10000", "--backlog", "4096", "--timeout", "120",
                 "--graceful-timeout", "2", "--no-control-socket"],
                env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=os.setsid,
                cwd=common.BENCH)
        server = common.Server(process, f"http://127.0.0.1:{port}", log)
        server.db_path = db_path
        try:
            common.wait_until_up(server)
            yield server
        finally:
            common.stop(server)

    return serve()
