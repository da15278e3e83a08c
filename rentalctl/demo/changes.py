"""One incremental batch of marketplace business on top of the existing demo data.

It reads the source's current state (highest ids and watermark), then plays about a day of
activity after it: new listings, viewings and bookings, price and status updates that bump
``last_modified_timestamp``, pending bookings decided, a few bad updates (newer versions that
must be rejected, of rows already invalid) and a few late-arriving changes stamped just before
the previous high mark, inside the default 5-minute lookback. The batch is a pure function of
the seed and that state.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rentalctl.adapters.source import Source
from rentalctl.demo import catalog as cat
from rentalctl.demo.formats import money, to_seconds
from rentalctl.demo.generator import Generator, Listing
from rentalctl.errors import ConfigError
from rentalctl.pipeline.rawvalues import canonical_timestamp
from rentalctl.tables import TABLES

Statement = tuple[str, Sequence[Sequence[Any]]]


@dataclass
class Batch:
    statements: list[Statement] = field(default_factory=list)
    inserted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))

    def insert(self, source: Source, table: str, rows: list[tuple]) -> None:
        if rows:
            self.statements.append((source.insert_sql(TABLES[table]), rows))
            self.inserted[table] += len(rows)

    def update(self, source: Source, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        """rows: (new values of ``columns``..., key)."""
        if not rows:
            return
        spec = TABLES[table]
        sets = ", ".join(
            f"{source.quote(spec.column(c).name)} = {source.placeholder}" for c in columns
        )
        sql = (
            f"UPDATE {source.quote(spec.name)} SET {sets} "
            f"WHERE {source.quote(spec.key)} = {source.placeholder}"
        )
        self.statements.append((sql, rows))
        self.updated[table] += len(rows)


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _scalar(source: Source, sql: str, params: Sequence[Any] = ()) -> Any:
    return source.query(sql, params)[0][0]


def _newest_change(source: Source, table: str) -> datetime:
    """The table's newest ``last_modified_timestamp`` not after the source's clock: a row
    dated in the future (``9999-12-31``) is not where business resumes, as it is not where a
    run's bookmark stops (``extract.bookmark_cap``)."""
    now = canonical_timestamp(_as_datetime(_scalar(source, "SELECT CURRENT_TIMESTAMP")))
    column, p = source.quote("last_modified_timestamp"), source.placeholder
    sql = f"SELECT MAX({column}) FROM {source.quote(table)} WHERE {column} <= {p}"
    newest = _scalar(source, sql, [now])
    if newest is None:
        raise ConfigError(
            f"every change in the source's {table} is dated after the source's clock ({now}): "
            "demo-data --changes plays the day after the newest change up to now"
        )
    return _as_datetime(newest)


def build_changes(source: Source, seed: int) -> Batch:
    q = source.quote
    counts = {t: _scalar(source, f"SELECT COUNT(*) FROM {q(t)}") for t in TABLES}
    if not counts["apartments"] or not counts["bookings"]:
        raise ConfigError(
            "the source holds no demo data to change: run `rentalctl demo-data` first"
        )
    max_apt = _scalar(source, f"SELECT MAX({q('id')}) FROM {q('apartments')}") or 0
    max_view = _scalar(source, f"SELECT MAX({q('id')}) FROM {q('user_viewing')}") or 0
    max_booking = _scalar(source, f"SELECT MAX({q('booking_id')}) FROM {q('bookings')}") or 0
    max_user = _scalar(source, f"SELECT MAX({q('user_id')}) FROM {q('bookings')}") or 50
    high = max(
        _newest_change(source, t) for t in ("apartments", "apartment_attributes", "bookings")
    )
    # Late changes are stamped just before the apartments table's own high mark, which is what
    # its bookmark holds after a run: inside the lookback, behind the bookmark.
    apt_high = _newest_change(source, "apartments")
    rng = random.Random(f"rentalctl-demo:{seed}:changes:{high.isoformat()}:{max_apt}:{max_booking}")
    start = to_seconds(high) + 3600  # business resumes an hour after the last recorded change

    def moment() -> int:
        return start + int(rng.random() * 86400)

    def stamp(sec: int) -> str:
        return gen.clock.micros(sec, int(rng.random() * 1_000_000))

    existing = _existing_listings(source, rng, max_apt)
    gen = Generator(1.0, seed, listings=existing, users=int(max_user))
    batch = Batch()

    # New listings, with their attributes.
    new_ids = range(max_apt + 1, max_apt + 1 + max(2, round(counts["apartments"] * 0.005)))
    apartments, attributes = [], []
    for apt_id in new_ids:
        listing = Listing(
            rng.randrange(len(cat.CITIES)),
            rng.choice((0, 1, 1, 2, 2, 3)),
            rng.uniform(900, 3500),
            "USD",
            moment(),
        )
        existing[apt_id] = listing
        apartments.append(
            _restamp(gen.apartment_row(rng, apt_id, listing), 7, stamp(listing.created))
        )
        attributes.append(
            _restamp(gen.attribute_row(rng, apt_id, listing), 17, stamp(listing.created))
        )
    batch.insert(source, "apartments", apartments)
    batch.insert(source, "apartment_attributes", attributes)
    gen.listing_ids = list(existing)

    # Price and availability updates, three of them late-arriving: stamped just before the
    # previous high mark.
    old_ids = [i for i in existing if i <= max_apt]
    updates = []
    for n, apt_id in enumerate(
        rng.sample(old_ids, min(len(old_ids), max(5, counts["apartments"] // 100)))
    ):
        listing = existing[apt_id]
        price = money(
            listing.monthly_usd * rng.uniform(0.9, 1.1) / cat.RATE_TO_USD[listing.currency]
        )
        when = to_seconds(apt_high) - rng.randint(10, 200) if n < 3 else moment()
        updates.append((price, 1 if rng.random() < 0.9 else 0, stamp(when), apt_id))
    # Two bad updates: newer versions the pipeline must reject. They hit listings whose current
    # version is already invalid. (A rejected update of a valid listing keeps its old version in
    # an incremental history, which a fresh pipeline over the final source never sees; the demo
    # keeps the two equal, and the tests cover that rule on their own.)
    broken = [
        apt_id
        for apt_id, price in source.query(
            f"SELECT {q('id')}, {q('price')} FROM {q('apartments')} "
            f"WHERE {q('id')} IS NOT NULL ORDER BY {q('id')}"
        )
        if _not_positive(price)
    ]
    updates += [("-1.00", 1, stamp(moment()), i) for i in rng.sample(broken, min(2, len(broken)))]
    batch.update(source, "apartments", ("price", "is_active", "last_modified_timestamp"), updates)

    attr_updates = [
        (
            rng.choice(("Yes", "Thumbnail", "No")),
            money(rng.choice((0, 25, 50))),
            stamp(moment()),
            apt_id,
        )
        for apt_id in rng.sample(old_ids, min(len(old_ids), max(3, counts["apartments"] // 200)))
    ]
    batch.update(
        source,
        "apartment_attributes",
        ("has_photo", "fee", "last_modified_timestamp"),
        attr_updates,
    )

    # New viewings (append-only), including a re-sent event.
    views = [
        gen.viewing_row(rng, max_view + 1 + k, moment())
        for k in range(max(5, counts["user_viewing"] // 100))
    ]
    views.append((max_view + len(views) + 1, *views[-1][1:]))
    batch.insert(source, "user_viewing", views)

    # New bookings in the batch's day.
    bookings = []
    for k in range(max(5, counts["bookings"] // 100)):
        sec = moment()
        row = gen.booking_row(rng, max_booking + 1 + k, sec, sec + 3600)
        bookings.append(_restamp(row, 9, stamp(sec + int(rng.random() * 3600))))
    batch.insert(source, "bookings", bookings)

    # Pending bookings decided: most confirmed, some canceled. Statuses are compared here, not
    # in SQL: MySQL's collation would also match 'Pending ' and SQLite's would not, and the
    # batch must be the same on both.
    statuses = source.query(
        f"SELECT {q('booking_id')}, {q('booking_status')} FROM {q('bookings')} "
        f"WHERE {q('booking_id')} IS NOT NULL ORDER BY {q('booking_id')}"
    )
    pending = [booking_id for booking_id, status in statuses if status == "pending"]
    decided = rng.sample(pending, min(len(pending), max(3, counts["bookings"] // 200)))
    status_rows = [
        (
            "confirmed" if rng.random() < 0.75 else rng.choice(("canceled", "cancelled")),
            stamp(moment()),
            booking_id,
        )
        for booking_id in decided
    ]
    batch.update(source, "bookings", ("booking_status", "last_modified_timestamp"), status_rows)
    # And one bad update, again of a booking whose current version is already invalid.
    invalid = [b for b, status in statuses if (status or "").strip().lower() not in _STATUSES]
    batch.update(
        source,
        "bookings",
        ("currency", "last_modified_timestamp"),
        [("XXX", stamp(moment()), b) for b in rng.sample(invalid, min(1, len(invalid)))],
    )
    return batch


_STATUSES = {"confirmed", "canceled", "cancelled", "pending"}


def _not_positive(price: Any) -> bool:
    try:
        return price is None or Decimal(str(price).strip()) <= 0
    except InvalidOperation:
        return True


def _restamp(row: tuple, index: int, value: str) -> tuple:
    return (*row[:index], value, *row[index + 1 :])


def _existing_listings(source: Source, rng: random.Random, max_apt: int) -> dict[int, Listing]:
    """A sample of current listings (price and currency) for updates and new bookings."""
    q, p = source.quote, source.placeholder
    ids = sorted(rng.sample(range(1, max_apt + 1), min(max_apt, 2000)))
    out: dict[int, Listing] = {}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        rows = source.query(
            f"SELECT {q('id')}, {q('price')}, {q('currency')} FROM {q('apartments')} "
            f"WHERE {q('id')} IN ({', '.join([p] * len(part))}) ORDER BY {q('id')}",
            part,
        )
        for apt_id, price, currency in rows:
            code = (currency or "").strip().upper()
            if code not in cat.RATE_TO_USD or price is None or float(price) <= 0:
                continue
            out[int(apt_id)] = Listing(0, 1, float(price) * cat.RATE_TO_USD[code], code, 0)
    return out
