"""Real servers for the sign-in tests: Parley in a thread, and the Node OAuth servers beside it."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")


def require_node() -> str:
    """The node binary, or a loud skip saying what is missing and how to get it."""
    if NODE is None:
        pytest.skip("SKIPPED LOUDLY: node is not installed, so the OAuth server tests cannot run "
                    "(install Node 20+ and run scripts/test; CI has it)")
    for package in ("oidc-provider", "oauth2-mock-server"):
        if not (HERE / "node_modules" / package).is_dir():
            pytest.skip(f"SKIPPED LOUDLY: tests/oauth/node_modules/{package} is missing: "
                        "run `npm ci` in tests/oauth (scripts/test does it)")
    return NODE


class NodeServer:
    """A Node script from tests/oauth that prints one JSON line once it listens on 127.0.0.1."""

    def __init__(self, script: str, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        node = require_node()
        self.process = subprocess.Popen(
            [node, str(HERE / script), *args], cwd=HERE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
        )
        self.info = self._first_line(timeout)
        self.url: str = self.info["url"]

    def _first_line(self, timeout: float) -> dict[str, Any]:
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = self.process.stdout.readline()
                if line:
                    selector.close()
                    return json.loads(line)
            if self.process.poll() is not None:
                break
        selector.close()
        exited = self.process.poll()
        if exited is None:  # still starting: stop it, then read what it said
            self.process.terminate()
        try:
            _, said = self.process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, said = self.process.communicate()
        self.stop()
        why = f"exited with {exited}" if exited is not None else f"said nothing in {timeout:.0f} s"
        raise RuntimeError(f"{self.process.args[1]} did not start ({why}): {said}")

    def post_next(self, **behaviour: Any) -> None:
        """Tell a mock provider what to answer next (see mock-provider.mjs)."""
        requests.post(f"{self.url}/__next", json=behaviour, timeout=5).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


class LiveServer:
    """Serve a WSGI app on 127.0.0.1:<free port> from a thread; the app can be set after binding
    (the OAuth servers need Parley's address before Parley needs theirs)."""

    def __init__(self) -> None:
        self.app = None
        self.server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _dispatch(self, environ, start_response):
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no app yet"]
        return self.app(environ, start_response)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_parley(tmp_path: Path, **config):
    """Parley with the article, on its own SQLite file, served by a LiveServer (a generator for
    a fixture: yields the server, then stops it and closes the app's pool)."""
    from app.commands import seed_article
    from app.extensions import db
    from tests.conftest import make_app, reset_database

    live = LiveServer()
    app = make_app(f"sqlite:///{tmp_path / 'parley.db'}", **config)
    reset_database(app)
    with app.app_context():
        seed_article()
    live.app = app
    try:
        yield live
    finally:
        live.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
