"""Run every benchmark in one go and print one table: `bench/run` (see bench/README.md)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench import common


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def table(results: dict) -> str:
    r = results
    lines = ["| benchmark | figure | ratio | target |", "| --- | --- | --- | --- |"]
    read = r.get("reading", {})
    if read:
        ceiling, server = read["render_ceiling"]["rps"], read["server_ceiling"]["rps"]
        for name, label, base, target in [
            ("parley_uncached", "Parley page, uncached (200 comments)", ceiling, "≥ 0.8× render ceiling"),
            ("parley_cached", "Parley page, anonymous cache", server, "≥ 0.5× server ceiling"),
            ("parley_304", "Parley page, revalidation (304)", server, ""),
            ("render_ceiling", "render ceiling (same page from memory)", ceiling, ""),
            ("server_ceiling", "server ceiling (hello world)", server, ""),
            ("isso_listing", "Isso listing (same 200 comments, JSON)", ceiling, ""),
        ]:
            row = read[name]
            cpu_ms = row.get("cpu_ms_per_request")
            cpu = f", {cpu_ms:.2f} ms worker CPU/request" if cpu_ms else ""
            lines.append(f"| {label} | {row['rps']:.1f} req/s (p50 {row['p50_ms']:.1f} ms, "
                         f"p99 {row['p99_ms']:.1f} ms{cpu}) | {ratio(row['rps'], base)} | "
                         f"{target} |")
    post = r.get("posting", {})
    for n in (1, 32):
        if f"parley_{n}" in post:
            p, i = post[f"parley_{n}"], post[f"isso_{n}"]
            lines.append(f"| posting, {n} poster(s): Parley | {p['per_second']:.1f}/s (p99 "
                         f"{p['p99_ms']:.0f} ms, {p['cpu_ms_per_post']:.2f} ms worker CPU/post), "
                         f"exact: {p['accounting']['exact']} | "
                         f"{ratio(p['per_second'], i['per_second'])} of Isso | "
                         f"{'≥ 1.5× Isso' if n == 32 else ''} |")
            lines.append(f"| posting, {n} poster(s): Isso | {i['per_second']:.1f}/s (p99 "
                         f"{i['p99_ms']:.0f} ms, {i['cpu_ms_per_post']:.2f} ms worker CPU/post), "
                         f"stored once: {i['accounting']['duplicate_texts'] == 0}, "
                         f"ids answered twice: {i['accounting'].get('answered_twice', 0)}"
                         f" | | |")
    for row in r.get("live", {}).values():
        lines.append(f"| live, {row['readers']:,} readers (1 worker) | p50 {row['p50_ms']:.0f} ms, "
                     f"p99 {row['p99_ms']:.0f} ms, missed {row['missed']}, "
                     f"{row['kib_per_idle_reader']:.1f} KiB/idle reader | | "
                     f"{'p99 < 250 ms' if row['readers'] == 5000 else ''} |")
    for row in r.get("growth", {}).values():
        lines.append(f"| growth, {row['comments']:,} comments | {row['page_ms']:.1f} ms, "
                     f"{row['queries']} SQL queries, {row['bytes']:,} bytes | | queries constant |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=["reading", "posting", "live", "growth"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--live-sizes", type=int, nargs="*", default=[100, 1000, 5000])
    parser.add_argument("--live-posts", type=int, default=10)
    parser.add_argument("--growth-sizes", type=int, nargs="*", default=[10, 100, 1000, 10000])
    parser.add_argument("--database-url", default=None,
                        help="Parley's database (default: a fresh SQLite file per benchmark)")
    parser.add_argument("--out", type=Path, default=common.BENCH / "results" / "latest.json")
    args = parser.parse_args()
    common.raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    results: dict = {"machine": common.machine(), "settings": vars(args) | {"out": str(args.out)}}
    try:
        if "reading" in args.only:
            from bench import reading
            print("reading …", flush=True)
            results["reading"] = reading.run(tmp, comments=200, workers=args.workers,
                                             seconds=args.seconds, connections=args.connections,
                                             database_url=args.database_url)
        if "posting" in args.only:
            from bench import posting
            print("posting …", flush=True)
            results["posting"] = posting.run(tmp, workers=args.workers, seconds=args.seconds,
                                             database_url=args.database_url)
        if "live" in args.only:
            from bench import live
            print("live …", flush=True)
            results["live"] = live.run(tmp, sizes=args.live_sizes, posts=args.live_posts,
                                       database_url=args.database_url)
        if "growth" in args.only:
            from bench import growth
            print("growth …", flush=True)
            results["growth"] = growth.run(tmp, sizes=args.growth_sizes,
                                           database_url=args.database_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        common.dump(args.out, results)
    machine = results["machine"]
    print(f"\n{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
          f"Python {machine['python']}, {machine['date']}; gunicorn -k gevent -w {args.workers}\n")
    print(table(results))
    print(f"\nraw figures: {args.out}")


if __name__ == "__main__":
    main()
