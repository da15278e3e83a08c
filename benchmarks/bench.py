"""Benchmark the local pipeline at several scales and print what it measured.

For each scale: generate demo data, then time a full run and an incremental run after
`demo-data --changes` (per stage, from the run record), with the peak resident memory of the
whole process tree (the Spark JVM included); extraction alone in a process of its own (its
memory must not grow with the data); and a reference — the same cleaning and KPI SQL run by
one single-process DuckDB program over the same extracted files. Also times `rentalctl --help`
and `rentalctl status`, and `rentalctl report` (seconds and the HTML file's size).

    .venv/bin/python benchmarks/bench.py --scales 0.1,0.3,1

Prints a table and writes JSON (default benchmarks/results/<timestamp>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the reference SQL lives with the tests that check against it

STAGES = ("Begin", "ExtractLoad", "Transform", "Publish")  # the Glue tasks of a run


def _tree_rss(root: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss.get(pid, 0) for pid in tree)


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a command; (wall seconds, peak RSS of its process tree, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return seconds, peak, out.decode()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rentalctl", *args]


def stage_seconds(record: dict[str, Any]) -> dict[str, float]:
    out = dict.fromkeys(STAGES, 0.0)
    for state in record["states"]:
        base = state["name"].split("[")[0]
        if base in out and state.get("seconds") is not None:
            out[base] += state["seconds"]
    return {k: round(v, 2) for k, v in out.items()}


def source_rows(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "source.db") as conn:
        return sum(
            conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("apartments", "apartment_attributes", "user_viewing", "bookings")
        )


def extract_only(home: Path, env: dict[str, str]) -> tuple[float, int]:
    """Extraction of every table into a scratch lake, in a process of its own."""
    scratch = home / "extract-only"
    code = (
        "from rentalctl import config; from rentalctl.context import Context;"
        "from rentalctl.pipeline import steps;"
        f"ctx = Context(config.load(env={{'RENTALCTL_HOME': {str(scratch)!r}, "
        f"'RENTALCTL_SOURCE_URL': 'sqlite:///{home / 'source.db'}'}}));"
        "ctx.state.ensure();"
        "[steps.extract(ctx, t, 'X') for t in ctx.settings.tables]"
    )
    seconds, peak, _ = measure([sys.executable, "-c", code], env)
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds, peak


def reference(home: Path, run_id: str) -> float:
    """Clean and compute the KPIs with one DuckDB program over the run's extracted files."""
    import duckdb

    from rentalctl import config
    from rentalctl.sqlfiles import presentation_refresh
    from rentalctl.tables import TABLES
    from tests.support.reference import curated_queries

    rates = dict(config.load(env={}).fx_rates)
    start = time.perf_counter()
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA curated")
    for name, spec in TABLES.items():
        files = sorted(
            (home / "lake" / "archive" / "raw" / name / f"run_id={run_id}").glob("part-*.csv.gz")
        )
        from rentalctl.adapters.warehouse import warehouse_type

        types = {
            c.name: warehouse_type(c).split("(")[0]
            if warehouse_type(c).startswith("VARCHAR")
            else warehouse_type(c)
            for c in spec.columns
        }
        con.execute(
            f"CREATE TABLE raw.{name} AS SELECT * FROM read_csv(?, columns = ?, header = true, "
            "quote = '\"', escape = '\"', nullstr = '', allow_quoted_nulls = false, "
            "auto_detect = false, hive_partitioning = false)",
            [[str(f) for f in files], types],
        )
    for name, query in curated_queries(rates).items():
        con.execute(f"CREATE TABLE curated.{name} AS {query}")
    for statement in presentation_refresh("duckdb"):
        con.execute(statement)
    seconds = time.perf_counter() - start
    con.close()
    return seconds


def median_seconds(argv: list[str], env: dict[str, str], times: int = 5) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        subprocess.run(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples), 3)


def bench_scale(scale: float, work: Path, with_reference: bool) -> dict[str, Any]:
    home = work / f"scale-{scale}"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "RENTALCTL_HOME": str(home)}
    env = {k: v for k, v in env.items() if not k.startswith("RENTALCTL_") or k == "RENTALCTL_HOME"}
    generate, _, _ = measure(cli("demo-data", "--scale", str(scale)), env)
    rows = source_rows(home)
    extract_s, extract_peak = extract_only(home, env)
    full_s, full_peak, out = measure(cli("-o", "json", "run"), env)
    full = json.loads(out)
    result: dict[str, Any] = {
        "scale": scale,
        "source_rows": rows,
        "generate_seconds": round(generate, 2),
        "extract_only": {"seconds": round(extract_s, 2), "peak_rss_mb": extract_peak // 2**20},
        "full": {
            "seconds": round(full_s, 2),
            "rows_per_second": round(rows / full_s),
            "peak_rss_mb": full_peak // 2**20,
            "stages": stage_seconds(full),
        },
    }
    if with_reference:
        result["reference_seconds"] = round(reference(home, full["run_id"]), 2)
        result["ratio_to_reference"] = round(full_s / result["reference_seconds"], 2)
    measure(cli("demo-data", "--changes"), env)
    incr_s, incr_peak, out = measure(cli("-o", "json", "run"), env)
    incremental = json.loads(out)
    changed = sum(t.get("extracted") or 0 for t in incremental["summary"].values())
    result["incremental"] = {
        "seconds": round(incr_s, 2),
        "rows_extracted": changed,
        "peak_rss_mb": incr_peak // 2**20,
        "stages": stage_seconds(incremental),
        "share_of_full": round(incr_s / full_s, 3),
    }
    result["help_seconds"] = median_seconds(cli("--help"), env)
    result["status_seconds"] = median_seconds(cli("status"), env)
    report = home / "report.html"
    result["report_seconds"] = median_seconds(cli("report", "--output-file", str(report)), env, 3)
    result["report_mb"] = round(report.stat().st_size / 2**20, 2)
    return result


def print_table(results: list[dict[str, Any]]) -> None:
    head = (
        f"{'scale':>6} {'rows':>10} {'full s':>7} {'rows/s':>8} {'peak MB':>8} "
        f"{'extract s':>9} {'extr MB':>8} {'incr s':>7} {'incr %':>6} {'ref s':>6} "
        f"{'ratio':>6} {'help s':>6} {'status s':>8} {'report s':>8} {'report MB':>9}"
    )
    print(head)
    for r in results:
        print(
            f"{r['scale']:>6} {r['source_rows']:>10,} {r['full']['seconds']:>7} "
            f"{r['full']['rows_per_second']:>8,} {r['full']['peak_rss_mb']:>8} "
            f"{r['extract_only']['seconds']:>9} {r['extract_only']['peak_rss_mb']:>8} "
            f"{r['incremental']['seconds']:>7} {100 * r['incremental']['share_of_full']:>5.1f}% "
            f"{r.get('reference_seconds', '-'):>6} {r.get('ratio_to_reference', '-'):>6} "
            f"{r['help_seconds']:>6} {r['status_seconds']:>8} "
            f"{r['report_seconds']:>8} {r['report_mb']:>9}"
        )
    print()
    print("stages (s)      " + " ".join(f"{s:>12}" for s in STAGES))
    for r in results:
        for kind in ("full", "incremental"):
            print(
                f"{r['scale']:>5} {kind:<11}"
                + " ".join(f"{r[kind]['stages'][s]:>12}" for s in STAGES)
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="0.1,0.3,1")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rentalctl-bench"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args(argv)
    results = [
        bench_scale(float(s), args.work, not args.no_reference) for s in args.scales.split(",")
    ]
    doc = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        },
        "results": results,
    }
    out = args.out or REPO / "benchmarks" / "results" / (
        datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print_table(results)
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
