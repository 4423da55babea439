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


def _spam_rows(r: dict) -> list[str]:
    """The learned filter on the YouTube Spam Collection (cross-validated), beside the posting
    ratio measured with it trained, and scikit-learn's naive Bayes on the same folds."""
    found = r.get("spam")
    if not found:
        return []
    f, c, t = found["filter"], found["classify"], found["thresholds"]
    p = found["posting_in_process"]
    post = r.get("posting", {})
    trained = not (r.get("settings") or {}).get("no_spam_filter")
    posting = (ratio(post["parley_32"]["per_second"], post["isso_32"]["per_second"])
               + (" posting, 32 posters, Parley ÷ Isso, filter trained" if trained
                  else " posting, filter untrained")
               if {"parley_32", "isso_32"} <= post.keys() else "")
    rows = [f"| learned spam filter, YouTube Spam Collection ({found['corpus']['comments']:,} "
            f"comments, {f['folds']}-fold): to Spam at P ≥ {t['spam_at']}, held at P ≥ "
            f"{t['unsure_at']} | precision {f['precision']:.1%}, recall {f['recall']:.1%}; spam "
            f"caught (Spam or held) {f['caught']:.1%}; real comments to Spam "
            f"{f['false_spam']:.2%}, held {f['held']:.2%}; classify() {c['us_median']:.0f} µs "
            f"median, {c['us_p99']:.0f} µs p99; posting in-process {p['ms_per_post_trained']:.2f} "
            f"ms CPU/post trained, {p['ms_per_post_empty']:.2f} empty ({p['added_pct']:+.1f} %) | "
            f"{posting} | caught ≥ 90 %, real to Spam ≤ 2 %, ≤ 1 ms per post |"]
    ref = found.get("sklearn")
    if ref:
        at = ref["at"].get(str(t["spam_at"]))
        rows.append(f"| reference: scikit-learn MultinomialNB on HashingVectorizer, same folds, "
                    f"P ≥ {t['spam_at']} | precision {at['precision']:.1%}, recall "
                    f"{at['recall']:.1%}; real comments to Spam {at['false_spam']:.2%}; "
                    f"{ref['us_per_call_median']:.0f} µs per call | | |")
    return rows


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
    lines += _spam_rows(r)
    for row in r.get("live", {}).values():
        lines.append(f"| live, {row['readers']:,} readers (1 worker) | p50 {row['p50_ms']:.0f} ms, "
                     f"p99 {row['p99_ms']:.0f} ms, missed {row['missed']}, "
                     f"{row['kib_per_idle_reader']:.1f} KiB/idle reader | | "
                     f"{'p99 < 250 ms' if row['readers'] == 5000 else ''} |")
    for name, row in r.get("cluster", {}).items():
        if "skipped" in row:
            lines.append(f"| cluster ({name}) | skipped: {row['skipped']} | | |")
            continue
        hosts, cpu = row["readers_per_host"], row["cpu_us_per_delivery"]
        lines.append(f"| cluster, {row['readers']:,} readers via HAProxy ({hosts['a']:,} + "
                     f"{hosts['b']:,} on 2 hosts × 1 worker) | p50 {row['p50_ms']:.0f} ms, "
                     f"p99 {row['p99_ms']:.0f} ms, missed {row['missed']}, "
                     f"{row['kib_per_idle_reader_hosts']:.1f} + "
                     f"{row['kib_per_idle_reader_haproxy']:.1f} KiB/idle reader (hosts + HAProxy"
                     f"{', ' + str(row['balancers']) + ' processes' if row['balancers'] > 1 else ''}"
                     f"); CPU per delivery: hosts {cpu['hosts']:.0f} µs, HAProxy "
                     f"{cpu['haproxy']:.0f} µs, reading process {cpu['reader']:.0f} µs | | "
                     f"p99 < 250 ms |")
        post = row["posting"]
        lines.append(f"| cluster, posting through HAProxy ({post['posters']} posters, on "
                     f"PostgreSQL) | {post['per_second']:.0f}/s, "
                     f"{post['hosts_cpu_ms_per_post']:.2f} ms hosts' CPU/post, "
                     f"{post['haproxy_cpu_ms_per_post']:.2f} ms HAProxy's | | |")
    for row in r.get("growth", {}).values():
        lines.append(f"| growth, {row['comments']:,} comments | {row['page_ms']:.1f} ms, "
                     f"{row['queries']} SQL queries, {row['bytes']:,} bytes | | queries constant |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*",
                        default=["reading", "posting", "live", "cluster", "growth", "spam"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--live-sizes", type=int, nargs="*", default=[100, 1000, 5000])
    parser.add_argument("--live-posts", type=int, default=10)
    parser.add_argument("--growth-sizes", type=int, nargs="*", default=[10, 100, 1000, 10000])
    parser.add_argument("--cluster-readers", type=int, default=10000)
    parser.add_argument("--postgres-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="where the cluster benchmark creates (and drops) its database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                        help="the cluster benchmark's Redis (its keys under a prefix of its own)")
    parser.add_argument("--database-url", default=None,
                        help="Parley's database (default: a fresh SQLite file per benchmark)")
    parser.add_argument("--no-spam-filter", action="store_true",
                        help="post with the learned spam filter untrained (it then classifies "
                             "nothing); by default it is trained first (bench/spam.py)")
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
                                             database_url=args.database_url,
                                             spam_filter=not args.no_spam_filter)
        if "live" in args.only:
            from bench import live
            print("live …", flush=True)
            results["live"] = live.run(tmp, sizes=args.live_sizes, posts=args.live_posts,
                                       database_url=args.database_url)
        if "cluster" in args.only:
            from bench import cluster
            print("cluster …", flush=True)
            results["cluster"] = cluster.run(tmp, readers=args.cluster_readers,
                                             posts=args.live_posts, postgres_url=args.postgres_url,
                                             redis_url=args.redis_url)
        if "growth" in args.only:
            from bench import growth
            print("growth …", flush=True)
            results["growth"] = growth.run(tmp, sizes=args.growth_sizes,
                                           database_url=args.database_url)
        if "spam" in args.only:
            from bench import spam
            print("spam …", flush=True)
            results["spam"] = spam.run(tmp)
            print(spam.summary(results["spam"]), flush=True)
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
