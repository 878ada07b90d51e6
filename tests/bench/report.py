#!/usr/bin/env python3
"""tests/bench/report.py - the one table of a benchmark run, with medians.

    report.py RESULTS [--targets pg|dir]

RESULTS holds tab-separated lines written by tests/bench/pg and dir:

    R  operation  tool  wall_s  maxrss_kb  tree_kb  stored_bytes  rate_bytes  cpu_s
    NA operation  tool  reason

One R line per run; the table shows per (operation, tool) the median wall
time (and the range), MB/s = rate_bytes / 1e6 / median wall (rate_bytes is
the database or data size, or the WAL pushed), the median stored bytes,
the median CPU seconds (user + system), the median peak RSS of the largest process (/usr/bin/time %M) and the median
peak of the summed RSS of the whole process tree. Rows keep the order of
their first appearance. --targets prints the issue's target checks.
"""
import statistics
import sys


def load(path):
    rows, order, na = {}, [], {}
    for line in open(path):
        p = line.rstrip("\n").split("\t")
        if p[0] == "NA":
            key = (p[1], p[2])
            na[key] = p[3]
            if key not in order:
                order.append(key)
        elif p[0] == "R":
            key = (p[1], p[2])
            if key not in order:
                order.append(key)
            rows.setdefault(key, []).append(
                dict(wall=float(p[3]), rss=int(p[4]), tree=int(p[5]),
                     stored=int(p[6]), rate=int(p[7]), cpu=float(p[8]) if len(p) > 8 else -1))
    return rows, order, na


def med(runs, k):
    return statistics.median(r[k] for r in runs)


def main(argv):
    rows, order, na = load(argv[0])
    targets = argv[2] if len(argv) > 2 and argv[1] == "--targets" else None
    print("| operation | tool | wall s (median) | min-max s | MB/s | CPU s | stored MB | peak RSS MB | tree RSS MB | runs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    s = {}
    for key in order:
        op, tool = key
        tool = tool.replace("|", "\\|")  # a pipe would end the markdown cell
        if key in na and key not in rows:
            print(f"| {op} | {tool} | not available ({na[key]}) | | | | | | | 0 |")
            continue
        runs = rows[key]
        wall = med(runs, "wall")
        s[key] = dict(wall=wall, rss=med(runs, "rss") / 1024, tree=med(runs, "tree") / 1024,
                      stored=med(runs, "stored"), rate=med(runs, "rate"), cpu=med(runs, "cpu"), mbs=med(runs, "rate") / 1e6 / max(wall, 1e-3))
        lo, hi = min(r["wall"] for r in runs), max(r["wall"] for r in runs)
        stored = f"{s[key]['stored'] / 1e6:.0f}" if s[key]["stored"] >= 0 else ""
        print(f"| {op} | {tool} | {wall:.2f} | {lo:.2f}-{hi:.2f} | {s[key]['mbs']:.0f} | {s[key]['cpu']:.1f} | {stored} "
              f"| {s[key]['rss']:.1f} | {s[key]['tree']:.1f} | {len(runs)} |")
    if targets == "pg":
        pg_targets(s)
    elif targets == "dir":
        dir_targets(s)


def check(ok, text):
    print(f"- {'PASS' if ok else 'MISS'}: {text}")


def pg_targets(s):
    print()
    print("Targets (same machine, same run, medians):")
    c = s.get(("full backup", "cairn"))
    if not c:
        print("- no cairn full backup measured")
        return
    p = s.get(("full backup", "pgBackRest"))
    if p:
        check(p["wall"] / c["wall"] >= 1.5,
              f"full backup at least 1.5x as fast as pgBackRest: {p['wall'] / c['wall']:.2f}x "
              f"({c['wall']:.1f} s vs {p['wall']:.1f} s; CPU {c['cpu']:.1f} s vs {p['cpu']:.1f} s)")
    w = s.get(("full backup", "WAL-G"))
    if w:
        check(c["wall"] < w["wall"],
              f"full backup faster than WAL-G: {c['wall']:.1f} s vs {w['wall']:.1f} s ({w['wall'] / c['wall']:.2f}x; "
              f"CPU {c['cpu']:.1f} s vs {w['cpu']:.1f} s)")
    else:
        print("- n/a: full backup faster than WAL-G: WAL-G not measured")
    t = s.get(("full backup", "tar | zstd -T0 -3"))
    if t:
        check(c["mbs"] >= 0.7 * t["mbs"],
              f"full backup at least 70% of tar | zstd -T0 -3 throughput: {100 * c['mbs'] / t['mbs']:.0f}% "
              f"({c['mbs']:.0f} vs {t['mbs']:.0f} MB/s; CPU {c['cpu']:.1f} s vs {t['cpu']:.1f} s)")
    i = s.get(("incremental (1% changed)", "cairn"))
    if i:
        check(i["wall"] < c["wall"] / 3,
              f"incremental in under a third of cairn's full backup time: {i['wall']:.1f} s vs "
              f"{c['wall']:.1f} s / 3 = {c['wall'] / 3:.1f} s ({100 * i['wall'] / c['wall']:.0f}% of the full)")
    r = s.get(("restore full", "cairn"))
    pr = s.get(("restore full", "pgBackRest"))
    if r and pr:
        check(r["wall"] <= pr["wall"],
              f"restore at least as fast as pgBackRest: {r['wall']:.1f} s vs {pr['wall']:.1f} s "
              f"({pr['wall'] / r['wall']:.2f}x; CPU {r['cpu']:.1f} s vs {pr['cpu']:.1f} s)")
    check(c["rss"] < 64,
          f"peak RSS of cairn's full backup under 64 MB (at this cluster size, default settings): {c['rss']:.1f} MB")


def dir_targets(s):
    print()
    print("Deduplication (medians): bytes stored by the three backups (first, unchanged, 1% changed)")
    print("and two ratios: bytes backed up / bytes stored (compression and deduplication together),")
    print("and 3 x the first backup's stored bytes / bytes stored (deduplication alone):")
    print()
    print("| tool | first MB | unchanged MB | 1% changed MB (% of data) | total stored MB | backed up / stored | dedup alone |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    tools = [t for (op, t) in s if op == "backup"]
    for t in tools:
        rows = [s.get((op, t)) for op in ("backup", "backup unchanged", "backup 1% changed")]
        if not all(rows):
            continue
        stored = sum(r["stored"] for r in rows)
        logical = sum(r["rate"] for r in rows)
        name = t.replace("|", "\\|")
        print(f"| {name} | {rows[0]['stored'] / 1e6:.0f} | {rows[1]['stored'] / 1e6:.1f} | "
              f"{rows[2]['stored'] / 1e6:.1f} ({100 * rows[2]['stored'] / rows[2]['rate']:.1f}%) | "
              f"{stored / 1e6:.0f} | {logical / stored:.2f} | {3 * rows[0]['stored'] / stored:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
