"""Benchmark the local pipeline at several scales and engines, and print what it measured.

For each scale, demo data is generated once; then for each transform engine (``duckdb``,
``spark``), from a copy of that source: a full run, an incremental run after
`demo-data --changes`, and a run with nothing new right after it — each timed as a whole
process, with the peak resident memory of its process tree (a Spark JVM included) and, per
state of the state machine, its seconds, rows per second and the peak memory sampled while it
ran. Also: extraction alone in a process of its own (its memory must not grow with the data);
the reference — one single-process program that extracts the same source with ``csv.writer``
into gzip CSV and then runs the same cleaning and KPI SQL in DuckDB; and `rentalctl --help`,
`rentalctl status` and `rentalctl report`.

    .venv/bin/python benchmarks/bench.py --scales 0.1,0.3,1 --engines duckdb,spark
    .venv/bin/python benchmarks/bench.py --scales 3,10 --engines duckdb

Prints tables and writes JSON (default benchmarks/results/<timestamp>.json).
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


def measure(
    argv: list[str], env: dict[str, str]
) -> tuple[float, int, str, list[tuple[float, int]]]:
    """Run a command; (wall seconds, peak RSS of its process tree, stdout, RSS samples as
    (epoch seconds, bytes))."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.time(), _tree_rss(proc.pid)))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    peak = max((rss for _, rss in samples), default=0)
    return seconds, peak, out.decode(), samples


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rentalctl", *args]


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def stages(record: dict[str, Any], samples: list[tuple[float, int]]) -> dict[str, Any]:
    """Per Glue state (the per-table ones summed): seconds, rows per second (rows the run read
    from the source, over the state's seconds) and the peak memory sampled while it ran."""
    rows = sum(t.get("extracted") or 0 for t in record["summary"].values())
    out: dict[str, Any] = {}
    for stage in STAGES:
        states = [s for s in record["states"] if s["name"].split("[")[0] == stage]
        # The per-table states run at once: their span is the stage's wall time.
        spans = [(_epoch(s["started_at"]), _epoch(s["ended_at"])) for s in states if s["ended_at"]]
        if not spans:
            continue
        begin, end = min(a for a, _ in spans), max(b for _, b in spans)
        seconds = end - begin
        # Memory is sampled every 50 ms: a shorter state gets the samples just around it.
        peak = max((rss for t, rss in samples if begin - 0.06 <= t <= end + 0.06), default=0)
        out[stage] = {
            "seconds": round(seconds, 2),
            "rows_per_second": round(rows / seconds) if seconds > 0 else None,
            "peak_rss_mb": peak // 2**20,
        }
    return out


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
    seconds, peak, _, _ = measure([sys.executable, "-c", code], env)
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds, peak


def reference(home: Path) -> dict[str, float]:
    """The same job as one plain single-process program: extract every table from the source
    with ``csv.writer`` into gzip CSV (level 1, as the pipeline writes), then clean and compute
    the KPIs with DuckDB over those files. Returns the seconds of each half and their sum."""
    import csv
    import gzip
    import sqlite3

    import duckdb

    from rentalctl import config
    from rentalctl.adapters.warehouse import warehouse_type
    from rentalctl.sqlfiles import presentation_refresh
    from rentalctl.tables import TABLES
    from tests.support.reference import curated_queries

    folder = home / "reference"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    rates = dict(config.load(env={}).fx_rates)
    start = time.perf_counter()
    with sqlite3.connect(home / "source.db") as source:
        for name, spec in TABLES.items():
            columns = ", ".join(f'"{c}"' for c in spec.column_names)
            cursor = source.execute(f'SELECT {columns} FROM "{name}"')
            with gzip.open(folder / f"{name}.csv.gz", "wt", compresslevel=1, newline="") as out:
                writer = csv.writer(out)
                writer.writerow(spec.column_names)
                while batch := cursor.fetchmany(10_000):
                    writer.writerows(batch)
    extracted = time.perf_counter()
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA curated")
    for name, spec in TABLES.items():
        types = {c.name: warehouse_type(c) for c in spec.columns}
        types = {k: "VARCHAR" if v.startswith("VARCHAR") else v for k, v in types.items()}
        con.execute(
            f"CREATE TABLE raw.{name} AS SELECT * FROM read_csv(?, columns = ?, header = true, "
            "auto_detect = false, hive_partitioning = false)",
            [str(folder / f"{name}.csv.gz"), types],
        )
    for name, query in curated_queries(rates).items():
        con.execute(f"CREATE TABLE curated.{name} AS {query}")
    for statement in presentation_refresh("duckdb"):
        con.execute(statement)
    con.close()
    done = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "extract_seconds": round(extracted - start, 2),
        "duckdb_seconds": round(done - extracted, 2),
        "seconds": round(done - start, 2),
    }


def median_seconds(argv: list[str], env: dict[str, str], times: int = 5) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        subprocess.run(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples), 3)


def timed_run(env: dict[str, str]) -> dict[str, Any]:
    seconds, peak, out, samples = measure(cli("-o", "json", "run"), env)
    record = json.loads(out)
    if record["status"] != "SUCCEEDED":
        raise SystemExit(f"run {record['run_id']} ended {record['status']}: {record['error']}")
    return {
        "seconds": round(seconds, 2),
        "rows_extracted": sum(t.get("extracted") or 0 for t in record["summary"].values()),
        "peak_rss_mb": peak // 2**20,
        "stages": stages(record, samples),
    }


def bench_engine(source: Path, home: Path, engine: str, rows: int) -> dict[str, Any]:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(source, home / "source.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENTALCTL_")}
    env.update(RENTALCTL_HOME=str(home), RENTALCTL_ENGINE=engine)
    full = timed_run(env)
    full["rows_per_second"] = round(rows / full["seconds"])
    measure(cli("demo-data", "--changes"), env)
    incremental = timed_run(env)
    incremental["share_of_full"] = round(incremental["seconds"] / full["seconds"], 3)
    return {"full": full, "incremental": incremental, "nothing_new": timed_run(env)}


def bench_scale(
    scale: float, work: Path, engines: list[str], with_reference: bool
) -> dict[str, Any]:
    home = work / f"scale-{scale}"
    shutil.rmtree(home, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENTALCTL_")}
    env["RENTALCTL_HOME"] = str(home)
    generate, _, _, _ = measure(cli("demo-data", "--scale", str(scale)), env)
    rows = source_rows(home)
    extract_s, extract_peak = extract_only(home, env)
    result: dict[str, Any] = {
        "scale": scale,
        "source_rows": rows,
        "generate_seconds": round(generate, 2),
        "extract_only": {"seconds": round(extract_s, 2), "peak_rss_mb": extract_peak // 2**20},
        "engines": {
            engine: bench_engine(home / "source.db", work / f"scale-{scale}-{engine}", engine, rows)
            for engine in engines
        },
    }
    if with_reference:
        result["reference"] = reference(home)
        for runs in result["engines"].values():
            runs["full"]["ratio_to_reference"] = round(
                runs["full"]["seconds"] / result["reference"]["seconds"], 2
            )
    last = work / f"scale-{scale}-{engines[-1]}"
    env["RENTALCTL_HOME"] = str(last)
    result["help_seconds"] = median_seconds(cli("--help"), env)
    result["status_seconds"] = median_seconds(cli("status"), env)
    report = last / "report.html"
    result["report_seconds"] = median_seconds(cli("report", "--output-file", str(report)), env, 3)
    result["report_mb"] = round(report.stat().st_size / 2**20, 2)
    return result


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        f"{'scale':>6} {'engine':>6} {'rows':>10} {'full s':>7} {'rows/s':>8} {'peak MB':>8} "
        f"{'incr s':>7} {'incr %':>6} {'quiet s':>7} {'ref s':>6} {'ratio':>6}"
    )
    for r in results:
        ref = r.get("reference", {}).get("seconds", "-")
        for engine, runs in r["engines"].items():
            full, incr = runs["full"], runs["incremental"]
            print(
                f"{r['scale']:>6} {engine:>6} {r['source_rows']:>10,} {full['seconds']:>7} "
                f"{full['rows_per_second']:>8,} {full['peak_rss_mb']:>8} {incr['seconds']:>7} "
                f"{100 * incr['share_of_full']:>5.1f}% {runs['nothing_new']['seconds']:>7} "
                f"{ref:>6} {full.get('ratio_to_reference', '-'):>6}"
            )
    print()
    print(
        f"{'scale':>6} {'extract s':>9} {'extr MB':>8} {'ref extract s':>13} {'ref duckdb s':>12} "
        f"{'help s':>6} {'status s':>8} {'report s':>8} {'report MB':>9}"
    )
    for r in results:
        ref = r.get("reference", {})
        print(
            f"{r['scale']:>6} {r['extract_only']['seconds']:>9} "
            f"{r['extract_only']['peak_rss_mb']:>8} {ref.get('extract_seconds', '-'):>13} "
            f"{ref.get('duckdb_seconds', '-'):>12} {r['help_seconds']:>6} "
            f"{r['status_seconds']:>8} {r['report_seconds']:>8} {r['report_mb']:>9}"
        )
    print()
    print("stages: seconds / rows per second / peak MB")
    print(f"{'scale':>6} {'engine':>6} {'run':<12}" + "".join(f"{s:>24}" for s in STAGES))
    for r in results:
        for engine, runs in r["engines"].items():
            for kind in ("full", "incremental", "nothing_new"):
                cells = []
                for stage in STAGES:
                    st = runs[kind]["stages"].get(stage)
                    cells.append(
                        f"{st['seconds']} / {st['rows_per_second'] or '-'} / {st['peak_rss_mb']}"
                        if st
                        else "-"
                    )
                print(
                    f"{r['scale']:>6} {engine:>6} {kind:<12}" + "".join(f"{c:>24}" for c in cells)
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="0.1,0.3,1")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rentalctl-bench"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args(argv)
    engines = args.engines.split(",")
    results = [
        bench_scale(float(s), args.work, engines, not args.no_reference)
        for s in args.scales.split(",")
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
