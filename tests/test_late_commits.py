"""Exactly-once against a MariaDB source with writers whose transactions commit late.

Eight writer threads each insert one ``user_viewing`` row (AUTO_INCREMENT id) and one booking per
transaction and commit up to 0.4 s later, while ``rentalctl run`` runs at least three times, and
until the writers have committed enough transactions to prove something (a run of this small
source takes about a second); after the writers stop, one more run. Every source row must then be
in the warehouse exactly once: each viewing id curated or rejected, and each written booking
curated at its key and version. A transaction that took a lower id but committed after a run read
a higher one is the case an id watermark without a lookback loses.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pymysql
import pytest

from tests.support.cli import ok_json

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

WRITERS = 8
FIRST_BOOKING = 900_000_000  # far above the demo data's booking ids
ENOUGH = 200  # committed transactions, while runs read


def _writer(
    params: dict[str, Any], stop: threading.Event, seq: Any, errors: list, commits: list
) -> None:
    rng = random.Random()
    try:
        conn = pymysql.connect(autocommit=False, **params)
    except pymysql.err.MySQLError as exc:  # pragma: no cover - reported by the test
        errors.append(exc)
        return
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT MIN(id) FROM apartments")
            (apartment,) = cur.fetchone()
            while not stop.is_set():
                n = next(seq)
                cur.execute(
                    "INSERT INTO user_viewing (user_id, apartment_id, viewed_at, is_wishlisted, "
                    "call_to_action) VALUES (%s, %s, NOW(), 'true', 'book')",
                    (n, apartment),
                )
                cur.execute(
                    "INSERT INTO bookings VALUES (%s, %s, %s, '2025-03-01 10:00:00', "
                    "'2025-04-01', '2025-04-03', 200.00, 'USD', 'confirmed', NOW(6))",
                    (FIRST_BOOKING + n, n, apartment),
                )
                stop.wait(rng.uniform(0, 0.4))  # the commit comes late
                conn.commit()
                commits.append(n)  # list.append is atomic
    except Exception as exc:  # pragma: no cover - reported by the test
        errors.append(exc)
    finally:
        conn.close()


def test_rows_committed_late_by_concurrent_writers_arrive_exactly_once(
    mysql_url: str, mysql_server: dict[str, Any], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENTALCTL_SOURCE_URL", mysql_url)
    ok_json("demo-data", "--scale", "0.002")
    params = {**mysql_server, "database": mysql_url.rsplit("/", 1)[1]}

    stop, errors, commits = threading.Event(), [], []
    seq = itertools.count(1)  # one number per transaction, shared (next() on it is atomic)
    threads = [
        threading.Thread(target=_writer, args=(params, stop, seq, errors, commits), daemon=True)
        for _ in range(WRITERS)
    ]
    for t in threads:
        t.start()
    try:
        runs = 0
        while runs < 3 or (len(commits) < ENOUGH and runs < 20):
            assert ok_json("run")["status"] == "SUCCEEDED"
            runs += 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert not errors, errors
    assert ok_json("run")["status"] == "SUCCEEDED"

    conn = pymysql.connect(**params)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM user_viewing")
            source_viewings = sorted(str(r[0]) for r in cur.fetchall())
            cur.execute(
                "SELECT booking_id, "
                "DATE_FORMAT(last_modified_timestamp, '%%Y-%%m-%%d %%H:%%i:%%s.%%f') "
                "FROM bookings WHERE booking_id >= %s",
                (FIRST_BOOKING,),
            )
            source_bookings = sorted((int(k), v) for k, v in cur.fetchall())
    finally:
        conn.close()
    written = len(source_bookings)
    assert written >= ENOUGH, f"the writers committed only {written} transactions: proves little"

    wh = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        curated_viewings = [
            str(r[0]) for r in wh.execute("SELECT id FROM curated.user_viewing").fetchall()
        ]
        rejected_viewings = [
            r[0]
            for r in wh.execute(
                "SELECT record_key FROM curated.rejected_rows WHERE source_table = 'user_viewing'"
            ).fetchall()
        ]
        curated_bookings = sorted(
            (int(k), v)
            for k, v in wh.execute(
                "SELECT booking_id, strftime(last_modified_timestamp, '%Y-%m-%d %H:%M:%S.%f') "
                "FROM curated.bookings WHERE booking_id >= ?",
                [FIRST_BOOKING],
            ).fetchall()
        )
        rejected_bookings = wh.execute(
            "SELECT COUNT(*) FROM curated.rejected_rows WHERE source_table = 'bookings' "
            "AND CAST(record_key AS BIGINT) >= ?",
            [FIRST_BOOKING],
        ).fetchone()[0]
    finally:
        wh.close()

    warehouse_viewings = Counter(curated_viewings + rejected_viewings)
    twice = sorted(k for k, n in warehouse_viewings.items() if n > 1)
    lost = sorted(set(source_viewings) - set(warehouse_viewings), key=int)
    assert (lost, twice) == ([], []), f"viewings lost: {lost}; in the warehouse twice: {twice}"
    assert sorted(warehouse_viewings, key=int) == sorted(source_viewings, key=int)

    lost_bookings = sorted(set(source_bookings) - set(curated_bookings))
    assert lost_bookings == [], f"bookings lost: {lost_bookings[:20]}"
    assert curated_bookings == source_bookings
    assert rejected_bookings == 0
