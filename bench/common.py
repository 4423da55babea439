"""What every benchmark needs: servers started under gunicorn, wrk, seeding, cleanup."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = Path(sys.executable)
GUNICORN = PYTHON.with_name("gunicorn")
ISSO_VENV = BENCH / ".venv-isso"
SLUG = "pakistan-russia-agree-to-bury-the-hatchet"
PERMALINK = f"/2011/01/25/{SLUG}/"
NOFILE = 65536


def raise_nofile(limit: int = NOFILE) -> None:
    """Allow this process (and what it starts) enough sockets for thousands of readers."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(limit, hard) if hard != resource.RLIM_INFINITY else limit
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parley_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "REDIS_"))}
    env.update({
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-secret-key",
        "LOG_LEVEL": "WARNING",        # no per-request log line: Isso and the ceilings log none
        "RATELIMIT_ENABLED": "false",  # flood and rate limits are lifted for benchmarks
        "FLASK_APP": "app",
    })
    env.update(extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def worker_cpu_seconds(self) -> float:
        """User + system CPU time the workers have used so far (from /proc/<pid>/stat)."""
        total = 0
        for pid in self.worker_pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        return total / os.sysconf("SC_CLK_TCK")

    def worker_rss_kib(self) -> int:
        total = 0
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total


def _limits() -> None:
    raise_nofile()
    os.setsid()  # its own process group, so stop() ends the master and its workers together


@contextmanager
def gunicorn(app: str, env: dict[str, str], workers: int, *, python: Path = PYTHON,
             cwd: Path = ROOT, worker_connections: int = 10000, name: str = "server"):
    """Serve *app* with gunicorn + gevent on a free port; stop it afterwards, whatever happens."""
    port = free_port()
    log = Path(env.get("BENCH_TMP", "/tmp")) / f"{name}-{port}.log"
    exe = python.with_name("gunicorn")
    cmd = [str(exe), app, "-k", "gevent", "-w", str(workers), "-b", f"127.0.0.1:{port}",
           "--worker-connections", str(worker_connections), "--backlog", "4096",
           "--graceful-timeout", "2", "--timeout", "120", "--no-control-socket"]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   preexec_fn=_limits)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_up(server)
        yield server
    finally:
        stop(server)


def wait_until_up(server: Server, path: str = "/", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited: {server.log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{server.url} did not come up: {server.log.read_text()[-2000:]}")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(5)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def warm(url: str, count: int = 20, headers: dict[str, str] | None = None) -> None:
    for _ in range(count):
        get(url, headers)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: float, connections: int = 16, headers: dict[str, str] | None = None,
        threads: int = 1) -> dict:
    """Run wrk against *url*; return requests/s, latency p50/p99 (ms) and non-2xx/3xx count."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
           "--timeout", "10s"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60,
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def latency(pct: str) -> float:
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")

    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    done = re.search(r"(\d+) requests in", out)
    return {"rps": rps, "requests": int(done.group(1)) if done else 0,
            "p50_ms": latency("50"), "p99_ms": latency("99"),
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else ""}


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(int(mem) / 1024 / 1024, 1),
            "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def dump(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
