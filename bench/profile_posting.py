"""Where a posting worker's time goes: py-spy on every worker while posters post.

    .venv/bin/python -m bench.profile_posting [--workers 2] [--posters 32] [--seconds 8]

Parley runs as `bench/posting.py` runs it (gunicorn + gevent, SQLite, limits lifted). Prints the
rate, then the share of the workers' samples under each line of Parley's code, largest first
(a line's share includes everything it calls). Needs py-spy (`bench/run` installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import tempfile
from pathlib import Path

from bench import common, posting, seed


def _shares(raw_files: list[Path]) -> tuple[int, collections.Counter]:
    total, under = 0, collections.Counter()
    for path in raw_files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            total += int(count)
            for frame in set(stack.split(";")):
                if "(app/" in frame:
                    under[frame] += int(count)
    return total, under


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--posters", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-profile-") as tmp:
        _profile(Path(tmp), args)


def _profile(tmp: Path, args: argparse.Namespace) -> None:
    database_url = f"sqlite:///{tmp / 'posting.db'}"
    info = seed.seed_parley(database_url, 0)
    env = common.parley_env(database_url, BENCH_TMP=str(tmp))
    case = posting.Case("profile", "parley", args.posters)
    with common.gunicorn("app:create_app()", env, args.workers, name="profile") as server:
        client = posting.parley_client(server.url, [info["slug"]])
        asyncio.run(posting._campaign(case, client, 2, "warm", posting.Meter(server, None)))
        raw = [tmp / f"py-spy-{pid}.txt" for pid in server.worker_pids()]
        spies = [subprocess.Popen([str(common.PYTHON.with_name("py-spy")), "record", "-p",
                                   path.stem.rsplit("-", 1)[1], "-d", str(args.seconds), "-r",
                                   "200", "-f", "raw", "-o", str(path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for path in raw]
        result = asyncio.run(posting._campaign(case, client, args.seconds, "profile",
                                               posting.Meter(server, None)))
        for spy in spies:
            spy.wait()
    print(f"{len(result['ids']) / result['seconds']:.1f} posts/s with {args.posters} posters, "
          f"{args.workers} worker(s)")
    total, under = _shares([path for path in raw if path.exists()])
    for frame, count in under.most_common(args.top):
        print(f"{count / total * 100:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
