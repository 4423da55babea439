"""Run every benchmark in one go and print one table: `bench/run` (see bench/README.md)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench import common


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


POSTING_ROWS = [
    ("parley_1", "1 poster, one post: Parley"),
    ("parley_32", "32 posters, one post: Parley"),
    ("parley_32_spread", "32 posters over 32 posts: Parley"),
    ("isso_1", "1 poster: Isso"),
    ("isso_32", "32 posters: Isso"),
]


def _posting_figure(p: dict) -> str:
    pg = p.get("pg_cpu_ms_per_post")
    cpu = f"{p['cpu_ms_per_post']:.2f} ms worker" + (
        f" + {pg:.2f} ms PostgreSQL" if pg is not None and pg == pg else "")
    a = p["accounting"]
    stored = (f"stored exactly once: {a['exact']}" if a["answered_twice"] == 0
              else f"stored once: {a['duplicate_texts'] == 0}, ids answered twice: "
                   f"{a['answered_twice']}")
    readers = p.get("readers")
    heard = (f", {readers['readers']} readers got each exactly once: {readers['exact']}"
             if readers else "")
    return (f"{p['per_second']:.1f}/s (p99 {p['p99_ms']:.0f} ms; CPU/post {cpu}; machine "
            f"idle {p['idle_pct']:.0f} %), {stored}{heard}")


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
    postgres = str((r.get("settings") or {}).get("database_url") or "").startswith("postgresql")
    for name, label in POSTING_ROWS:
        if name in post:
            lines.append(f"| posting, {label} | {_posting_figure(post[name])} | | |")
    if {name for name, _ in POSTING_ROWS} <= post.keys():
        rate = {name: row["per_second"] for name, row in post.items()}
        for label, a, b, target in [
            ("32 posters on one post ÷ 1 poster (Parley)", "parley_32", "parley_1",
             "≥ 2×" if postgres else ""),
            ("32 posters on one post ÷ the same spread over 32 posts (Parley)", "parley_32",
             "parley_32_spread", "≥ 0.9×" if postgres else ""),
            ("32 posters on one post, Parley ÷ Isso (on SQLite, its only database)", "parley_32",
             "isso_32", "≥ 1.0×" if postgres else "≥ 1.5×"),
            ("1 poster, Parley ÷ Isso", "parley_1", "isso_1", ""),
        ]:
            lines.append(f"| posting: {label} | | {ratio(rate[a], rate[b])} | {target} |")
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
