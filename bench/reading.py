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

    def check(name: str, url: str, headers: dict | None, marker: bytes | None) -> int:
        status, body, _ = common.get(url, headers)
        if status not in (200, 304) or (marker is not None and marker not in body):
            raise RuntimeError(f"{name}: {url} answered {status}")
        common.warm(url, 30, headers)
        return len(body)

    def measure(name: str, url: str, headers: dict | None = None, check_for: bytes | None = None):
        size = check(name, url, headers, check_for)
        results[name] = common.wrk(url, seconds, connections, headers)
        results[name]["bytes"] = size
        print(f"  {name:<34} {results[name]['rps']:>9.1f} req/s", flush=True)

    def alternate(rows: list[tuple[str, common.Server, str]], headers: dict, check_for: bytes,
                  rounds: int = 4):
        """Measure *rows* (both servers up) in turn, *rounds* times, and add the rounds up: a
        machine whose speed drifts over a minute slows both sides alike. Each server's worker
        CPU per request is read too: steadier than the rate on a shared machine."""
        sizes = {name: check(name, url, headers, check_for) for name, _, url in rows}
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in rows}
        cpu = dict.fromkeys(runs, 0.0)
        for _ in range(rounds):
            for name, server, url in rows:
                before = server.worker_cpu_seconds()
                runs[name].append(common.wrk(url, max(2.0, seconds / 2), connections, headers))
                cpu[name] += server.worker_cpu_seconds() - before
        for name, measured in runs.items():
            requests = sum(m["requests"] for m in measured)
            results[name] = {
                "rps": sum(m["rps"] for m in measured) / rounds,
                "cpu_ms_per_request": round(cpu[name] * 1000 / requests, 2) if requests else None,
                "p50_ms": sorted(m["p50_ms"] for m in measured)[rounds // 2],
                "p99_ms": max(m["p99_ms"] for m in measured),
                "non_2xx": sum(m["non_2xx"] for m in measured),
                "rounds": [round(m["rps"], 1) for m in measured], "bytes": sizes[name]}
            print(f"  {name:<34} {results[name]['rps']:>9.1f} req/s  "
                  f"{results[name]['cpu_ms_per_request']} ms CPU/request  rounds "
                  f"{results[name]['rounds']}", flush=True)

    marker = f"Reader {comments - 1}".encode()
    # Pages that take tens of milliseconds of CPU are measured with a new connection per
    # request: with keep-alive, wrk's 16 connections are shared out between the two workers
    # once, at random, and a worker left with few of them idles (runs varied from 0.57x to
    # 1.16x). A fresh connection goes to whichever worker is free. The connect costs ~0.1 ms,
    # nothing next to a 20 ms page; the fast rows (cache, 304, hello world) keep keep-alive.
    heavy = {"Connection": "close"}
    # The uncached page and the render ceiling are the pair the target compares: both servers
    # are up together and measured in alternation (`alternate`).
    with common.gunicorn("app:create_app()", {**env, "PAGE_CACHE_SIZE": "0"}, workers,
                         name="parley-nocache") as parley, \
            common.gunicorn("bench.apps.ceiling:create_app()",
                            {**env, "BENCH_DATABASE_URL": database_url}, workers,
                            name="ceiling") as ceiling:
        alternate([("parley_uncached", parley, parley.url + page),
                   ("render_ceiling", ceiling, ceiling.url + page)], heavy, marker)
    with common.gunicorn("app:create_app()", env, workers, name="parley") as server:
        measure("parley_cached", server.url + page, check_for=marker)
        _, _, headers = common.get(server.url + page)
        measure("parley_304", server.url + page, {"If-None-Match": headers["ETag"]})
    with common.gunicorn("bench.apps.hello:app", env, workers, name="hello") as server:
        measure("server_ceiling", server.url + "/")
    with isso_server(tmp, workers) as server:
        seed.seed_isso(server.url, ISSO_THREAD, comments)
        measure("isso_listing", f"{server.url}/?uri={ISSO_THREAD}", heavy, check_for=marker)
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
