"""The curated transform does what docs/contract.md §5 says: normalisation, rejection reasons in
order, one version per key, duplicates, money in USD, and the raw row as JSON. Whole frames are
compared exactly (values as text) against expectations written by hand from the contract, on both
engines (DuckDB through SQLFrame, and Spark); the end-to-end tests extract from SQLite, run the
transform job and read its Parquet with DuckDB."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config
from rentalctl.adapters.factories import open_source
from rentalctl.adapters.lake_local import LocalLake
from rentalctl.adapters.lake_s3 import S3Lake
from rentalctl.context import Context
from rentalctl.curated import CURATED, data_files
from rentalctl.errors import ConfigError, PipelineFailed
from rentalctl.pipeline import steps
from rentalctl.pipeline.frame_api import engine_of, using
from rentalctl.pipeline.transform import classify, rates_column, stats, transform
from rentalctl.pipeline.transform_job import read_raw_keys, run_transform, spark_uri
from rentalctl.pipeline.transform_schema import raw_schema
from rentalctl.run.manifest import read_manifest
from rentalctl.tables import TABLES
from tests.support.frames import assert_frame, frame, schema

RUN = "R1"
RATES = {"USD": D("1.0"), "EUR": D("1.08"), "GBP": D("1.27"), "INR": D("0.012")}

# Schemas written out by hand from docs/contract.md sections 3 and 5 (not taken from the code under
# test).
RAW_DDL = {
    "apartments": "id BIGINT, title STRING, source STRING, price DECIMAL(12,2), "
    "currency STRING, listing_created_on TIMESTAMP_NTZ, is_active INT, "
    "last_modified_timestamp TIMESTAMP_NTZ",
    "apartment_attributes": "id BIGINT, category STRING, body STRING, amenities STRING, "
    "bathrooms DECIMAL(3,1), bedrooms DECIMAL(3,1), fee DECIMAL(10,2), has_photo STRING, "
    "pets_allowed STRING, price_display STRING, price_type STRING, square_feet INT, "
    "address STRING, cityname STRING, state STRING, latitude DECIMAL(10,7), "
    "longitude DECIMAL(10,7), last_modified_timestamp TIMESTAMP_NTZ",
    "user_viewing": "id BIGINT, user_id BIGINT, apartment_id BIGINT, viewed_at TIMESTAMP_NTZ, "
    "is_wishlisted STRING, call_to_action STRING",
    "bookings": "booking_id BIGINT, user_id BIGINT, apartment_id BIGINT, "
    "booking_date TIMESTAMP_NTZ, checkin_date DATE, checkout_date DATE, "
    "total_price DECIMAL(12,2), currency STRING, booking_status STRING, "
    "last_modified_timestamp TIMESTAMP_NTZ",
}
CURATED_DDL = {
    "apartments": "id BIGINT, title STRING, source STRING, price DECIMAL(12,2), "
    "currency STRING, listing_created_on TIMESTAMP_NTZ, is_active BOOLEAN, "
    "last_modified_timestamp TIMESTAMP_NTZ, price_usd DECIMAL(18,2)",
    "apartment_attributes": RAW_DDL["apartment_attributes"].replace(
        "has_photo STRING", "has_photo BOOLEAN"
    ),
    "user_viewing": "id BIGINT, user_id BIGINT, apartment_id BIGINT, viewed_at TIMESTAMP_NTZ, "
    "is_wishlisted BOOLEAN, call_to_action STRING",
    "bookings": RAW_DDL["bookings"] + ", total_price_usd DECIMAL(18,2), nights INT",
}
REJECTED_DDL = "source_table STRING, record_key STRING, reason STRING, record STRING, run_id STRING"

T0 = datetime(2025, 1, 1, 12, 0, 0, 123456)
T1 = datetime(2025, 1, 2, 8, 30, 0, 1)
T2 = datetime(2025, 1, 3, 0, 0, 0)
CREATED = datetime(2024, 5, 1, 9, 30)
V0 = datetime(2025, 1, 1, 9, 0)
V1 = datetime(2025, 1, 1, 9, 0, 1)


def record(table: str, row: tuple[Any, ...]) -> str:
    """The raw row as the contract's JSON text: every column, nulls included, timestamps with six
    fractional digits, decimals as written. Test inputs avoid control characters other than
    newline and tab, whose escapes every JSON writer spells the same."""
    names = [part.split()[0] for part in RAW_DDL[table].split(", ")]
    fields = []
    for name, value in zip(names, row, strict=True):
        if value is None:
            text = "null"
        elif isinstance(value, datetime):
            text = f'"{value:%Y-%m-%d %H:%M:%S.%f}"'
        elif isinstance(value, date):
            text = f'"{value.isoformat()}"'
        elif isinstance(value, str):
            text = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, D):
            text = format(value, "f")  # plain notation: 0.0000000, never 0E-7
        else:
            text = str(value)
        fields.append(f'"{name}":{text}')
    return "{" + ",".join(fields) + "}"


def rej(table: str, row: tuple[Any, ...], reason: str, raw_json: str | None = None) -> tuple:
    key = None if row[0] is None else str(row[0])
    return (table, key, reason, raw_json or record(table, row), RUN)


def check(
    frames: Any,
    table: str,
    rows: list[tuple],
    curated: list[tuple],
    rejected: list[tuple],
    rates: dict[str, D] = RATES,
) -> None:
    got_curated, got_rejected = transform(table, frame(frames, rows, RAW_DDL[table]), RUN, rates)
    assert_frame(got_curated, curated, CURATED_DDL[table])
    assert_frame(got_rejected, rejected, REJECTED_DDL)


def test_raw_schema_follows_the_table_specs(frames: Any) -> None:
    for name in TABLES:
        expected = schema(frames, RAW_DDL[name])
        with using(engine_of(frames)):
            assert [(f.name, f.dataType) for f in raw_schema(name).fields] == [
                (f.name, f.dataType) for f in expected.fields
            ]


def test_transform_modules_do_not_import_pyspark_at_import_time() -> None:
    code = (
        "import sys, rentalctl.spark, rentalctl.pipeline.transform_job; "
        "sys.exit('pyspark' in sys.modules or 'sqlframe' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --- apartments -----------------------------------------------------------------------------


APT_DEFAULTS = {
    "title": "Flat",
    "source": "RentLingo",
    "price": D("100.00"),
    "currency": "USD",
    "created": CREATED,
    "active": 1,
    "stamp": T0,
}


def apt(id_: int | None = 1, **kw: Any) -> tuple:
    """A raw apartments row: valid unless overridden."""
    return (id_, *(APT_DEFAULTS | kw).values())


def apt_out(id_: int, usd: D, active: bool = True, **kw: Any) -> tuple:
    """A curated apartments row: the raw values, is_active as BOOLEAN, then price_usd."""
    return (*apt(id_, active=active, **kw), usd)


def test_apartments_text_normalisation_and_booleans(frames: Any) -> None:
    rows = [
        apt(1, title="  Sunny \t flat\n\nnear  the park ", source="", currency=" eur "),
        apt(2, title="   ", source=" Rent\tLingo ", currency="Usd"),
        apt(3, title="\r\nCRLF\r\n", currency="gbp", price=D("10.00"), active=0),
    ]
    check(
        frames,
        "apartments",
        rows,
        [
            apt_out(1, D("108.00"), title="Sunny flat near the park", source=None, currency="EUR"),
            apt_out(2, D("100.00"), title=None, source="Rent Lingo"),
            apt_out(3, D("12.70"), title="CRLF", currency="GBP", price=D("10.00"), active=False),
        ],
        [],
    )


def test_money_is_rounded_half_up_to_the_cent(frames: Any) -> None:
    rates = {"USD": D("1.0"), "GBP": D("1.27"), "CHF": D("0.5")}
    rows = [
        apt(1, price=D("20.01"), currency="CHF"),  # 10.005
        apt(2, price=D("20.03"), currency="CHF"),  # 10.015
        apt(3, price=D("20.05"), currency="CHF"),  # 10.025: half-even would give 10.02
        apt(4, price=D("1.50"), currency="GBP"),  # 1.905: half-even would give 1.90
        apt(5, price=D("0.01"), currency="CHF"),  # 0.005
        apt(6, price=D("9999999999.99"), currency="GBP"),  # 12699999999.9873
    ]
    check(
        frames,
        "apartments",
        rows,
        [
            apt_out(1, D("10.01"), price=D("20.01"), currency="CHF"),
            apt_out(2, D("10.02"), price=D("20.03"), currency="CHF"),
            apt_out(3, D("10.03"), price=D("20.05"), currency="CHF"),
            apt_out(4, D("1.91"), price=D("1.50"), currency="GBP"),
            apt_out(5, D("0.01"), price=D("0.01"), currency="CHF"),
            apt_out(6, D("12699999999.99"), price=D("9999999999.99"), currency="GBP"),
        ],
        [],
        rates,
    )


def test_apartments_rejections(frames: Any) -> None:
    bad = {
        "missing_key": [apt(None)],
        "invalid_price": [apt(2, price=None), apt(3, price=D("0.00")), apt(4, price=D("-1.00"))],
        "unknown_currency": [apt(5, currency="JPY"), apt(6, currency=None), apt(7, currency=" ")],
        "missing_date": [apt(8, created=None)],
        "invalid_boolean": [apt(9, active=None), apt(10, active=2)],
    }
    literal = apt(12, title='say "hi",\n ok', currency="eur", price=D("1.00"), active=None)
    rows = [r for group in bad.values() for r in group] + [apt(11, price=D("0.01")), literal]
    check(
        frames,
        "apartments",
        rows,
        [apt_out(11, D("0.01"), price=D("0.01"))],
        [rej("apartments", r, reason) for reason, group in bad.items() for r in group]
        + [
            (
                "apartments",
                "12",
                "invalid_boolean",
                r'{"id":12,"title":"say \"hi\",\n ok","source":"RentLingo","price":1.00,'
                r'"currency":"eur","listing_created_on":"2024-05-01 09:30:00.000000",'
                r'"is_active":null,"last_modified_timestamp":"2025-01-01 12:00:00.123456"}',
                RUN,
            )
        ],
    )


def test_apartments_get_the_first_applicable_reason(frames: Any) -> None:
    rows = [
        apt(None, price=D("0.00"), currency="JPY", created=None, active=None),
        apt(2, price=None, currency=None, created=None, active=None),
        apt(3, currency="JPY", created=None, active=5),
        apt(4, created=None, active=None),
    ]
    reasons = ["missing_key", "invalid_price", "unknown_currency", "missing_date"]
    check(
        frames,
        "apartments",
        rows,
        [],
        [rej("apartments", r, reason) for r, reason in zip(rows, reasons, strict=True)],
    )


def test_versions_one_valid_row_per_key_and_stats(frames: Any) -> None:
    rows = [
        apt(1, stamp=T0, price=D("100.00")),
        apt(1, stamp=T2, price=D("300.00")),  # the newest valid version wins
        apt(1, stamp=T1, price=D("200.00")),
        apt(2, stamp=T0),
        apt(2, stamp=T1, price=D("0.00")),  # newer but rejected: the older stays
        apt(3),
        apt(3),  # an exact copy: one curated row
        apt(4, title="A"),
        apt(4, title="B"),  # same key and stamp: the greater raw JSON text is kept
        apt(5, currency="JPY"),
        apt(6, stamp=T0, created=None),  # older and rejected
        apt(6, stamp=T1),
    ]
    check(
        frames,
        "apartments",
        rows,
        [
            apt_out(1, D("300.00"), stamp=T2, price=D("300.00")),
            apt_out(2, D("100.00")),
            apt_out(3, D("100.00")),
            apt_out(4, D("100.00"), title="B"),
            apt_out(6, D("100.00"), stamp=T1),
        ],
        [
            rej("apartments", rows[4], "invalid_price"),
            rej("apartments", rows[9], "unknown_currency"),
            rej("apartments", rows[10], "missing_date"),
        ],
    )
    raw = frame(frames, rows, RAW_DDL["apartments"])
    assert stats("apartments", classify("apartments", raw, RATES)) == {
        "rows_read": 12,
        "valid": 9,
        "superseded": 4,
        "curated": 5,
        "rejected": 3,
        "rejected_by_reason": {
            "missing_key": 0,
            "invalid_price": 1,
            "unknown_currency": 1,
            "missing_date": 1,
            "invalid_boolean": 0,
        },
    }


def test_rates_must_fit_the_fx_rates_table(frames: Any) -> None:
    with pytest.raises(ConfigError, match="DECIMAL\\(18,6\\)"):
        rates_column({"EUR": D("1.0800001")})


# --- apartment_attributes -------------------------------------------------------------------

ATTR_DEFAULTS = {
    "category": "housing/rent/apartment",
    "body": "Nice",
    "amenities": "Gym",
    "bathrooms": D("1.0"),
    "bedrooms": D("2.0"),
    "fee": None,
    "has_photo": "Yes",
    "pets_allowed": "Cats",
    "price_display": "$1,200",
    "price_type": "Monthly",
    "square_feet": 800,
    "address": "1 Main St",
    "cityname": "Austin",
    "state": "TX",
    "latitude": D("30.2672000"),
    "longitude": D("-97.7431000"),
    "stamp": T0,
}


def attr(id_: int | None = 1, **kw: Any) -> tuple:
    return (id_, *(ATTR_DEFAULTS | kw).values())


def attr_out(id_: int, has_photo: bool | None, **kw: Any) -> tuple:
    return attr(id_, **(kw | {"has_photo": has_photo}))


def test_attributes_normalisation_and_has_photo(frames: Any) -> None:
    rows = [
        attr(
            1,
            cityname="  new   YORK ",
            body="Line one\nline two\t\tend ",
            amenities="",
            has_photo="Thumbnail",
        ),
        attr(2, cityname="SAN\tfrancisco", has_photo="garbage"),
        attr(3, cityname="o'neill city", has_photo=None),
        attr(4, has_photo=" f "),
        attr(5, has_photo="TRUE"),
        attr(6, has_photo="0"),
        attr(7, has_photo="y"),
        attr(8, has_photo=""),
        attr(9, cityname="Old", stamp=T0),
        attr(9, cityname="New", stamp=T1),
    ]
    check(
        frames,
        "apartment_attributes",
        rows,
        [
            attr_out(1, True, cityname="New York", body="Line one line two end", amenities=None),
            attr_out(2, None, cityname="San Francisco"),
            attr_out(3, None, cityname="O'neill City"),
            attr_out(4, False),
            attr_out(5, True),
            attr_out(6, False),
            attr_out(7, True),
            attr_out(8, None),
            attr_out(9, True, cityname="New", stamp=T1),
        ],
        [],
    )


def test_attributes_rejections(frames: Any) -> None:
    rows = [
        attr(None, bedrooms=D("-1.0")),  # both apply: the first listed wins
        attr(2, bedrooms=D("-1.0")),
        attr(3, bathrooms=D("-0.5")),
        attr(4, square_feet=0),
        attr(5, square_feet=-5, has_photo="garbage"),
        attr(6, bedrooms=None, bathrooms=None, square_feet=None),  # NULL measures are allowed
        attr(7, bedrooms=D("0.0"), bathrooms=D("0.0"), square_feet=1),
    ]
    check(
        frames,
        "apartment_attributes",
        rows,
        [
            attr_out(6, True, bedrooms=None, bathrooms=None, square_feet=None),
            attr_out(7, True, bedrooms=D("0.0"), bathrooms=D("0.0"), square_feet=1),
        ],
        [
            rej("apartment_attributes", rows[0], "missing_key"),
            rej(
                "apartment_attributes",
                rows[1],
                "invalid_measure",
                '{"id":2,"category":"housing/rent/apartment","body":"Nice","amenities":"Gym",'
                '"bathrooms":1.0,"bedrooms":-1.0,"fee":null,"has_photo":"Yes",'
                '"pets_allowed":"Cats","price_display":"$1,200","price_type":"Monthly",'
                '"square_feet":800,"address":"1 Main St","cityname":"Austin","state":"TX",'
                '"latitude":30.2672000,"longitude":-97.7431000,'
                '"last_modified_timestamp":"2025-01-01 12:00:00.123456"}',
            ),
            rej("apartment_attributes", rows[2], "invalid_measure"),
            rej("apartment_attributes", rows[3], "invalid_measure"),
            rej("apartment_attributes", rows[4], "invalid_measure"),
        ],
    )


def cut(full: str, head: str) -> str:
    """A record too long for Redshift's VARCHAR(65535), as curated.rejected_rows keeps it: its
    first characters, then the whole record's size in bytes and its SHA-256."""
    data = full.encode()
    return (
        f"{head} ...[truncated from {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}]"
    )


def test_a_rejected_record_longer_than_redshift_holds_is_cut_between_characters(
    frames: Any,
) -> None:
    # The raw rows as JSON: 65,535 bytes (fits), 65,536 (one byte too many), and ~70 KB of
    # two-, three- and four-byte characters (é, €, 😀), as long TEXT columns can hold.
    base = len(record("apartment_attributes", attr(1, body="", square_feet=0)).encode())
    fits = attr(1, body="x" * (65535 - base), square_feet=0)
    over = attr(2, body="x" * (65536 - base), square_feet=0)
    wide = attr(3, body="é" * 30000, amenities="€" * 1500 + "😀" * 500, square_feet=0)
    full = {n: record("apartment_attributes", row) for n, row in ((1, fits), (2, over), (3, wide))}
    assert [len(full[n].encode()) for n in (1, 2)] == [65535, 65536]
    assert len(full[3].encode()) == 66871

    _, rejected = transform(
        "apartment_attributes",
        frame(frames, [fits, over, wide], RAW_DDL["apartment_attributes"]),
        RUN,
        RATES,
    )
    got = dict(rejected.select("record_key", "record").collect())
    assert got["1"] == full[1]
    assert got["2"] == cut(full[2], full[2][:65407])  # 65535 bytes less 128 for the marker
    # The beginning kept ends between two characters and fills most of the room.
    head = got["3"][: got["3"].index(" ...[truncated from ")]
    assert got["3"] == cut(full[3], head)
    assert full[3].startswith(head)
    assert 0.8 * 65407 <= len(head.encode()) <= 65407
    assert all(len(r.encode()) <= 65535 for r in got.values())


# --- user_viewing ---------------------------------------------------------------------------


def view(
    id_: int,
    user: int | None = -1,
    apt_id: int | None = 100,
    at: Any = V0,
    wish: str | None = "yes",
    cta: str | None = "book_now",
) -> tuple:
    """A raw user_viewing row; the user defaults to the id, so views differ unless told."""
    return (id_, id_ if user == -1 else user, apt_id, at, wish, cta)


def view_out(id_: int, wish: bool, user: int | None = -1, at: Any = V0, cta: Any = "book_now"):
    return (id_, id_ if user == -1 else user, 100, at, wish, cta)


def test_viewing_is_wishlisted_words(frames: Any) -> None:
    words = {
        True: ["Y", "yes", " TRUE ", "t", "1"],
        False: ["n", "No", "FALSE", "f", "0", None, "", " \t "],
    }
    rows, expected = [], []
    for value, group in words.items():
        for word in group:
            rows.append(view(len(rows) + 1, wish=word))
            expected.append(view_out(len(rows), value))
    rows += [
        view(20, wish="maybe"),
        view(21, wish="y e s"),
        view(22, cta="  contact \n owner "),
        view(23, cta=""),
    ]
    check(
        frames,
        "user_viewing",
        rows,
        [*expected, view_out(22, True, cta="contact owner"), view_out(23, True, cta=None)],
        [
            rej("user_viewing", rows[-4], "invalid_boolean"),
            rej("user_viewing", rows[-3], "invalid_boolean"),
        ],
    )


def test_viewing_rejections_in_order(frames: Any) -> None:
    rows = [
        view(1, user=None),
        view(2, apt_id=None),
        view(3, at=None),
        view(4, user=None, wish="maybe"),  # both apply: missing_field is listed first
        view(5, wish="maybe"),
    ]
    check(
        frames,
        "user_viewing",
        rows,
        [],
        [rej("user_viewing", r, "missing_field") for r in rows[:4]]
        + [
            (
                "user_viewing",
                "5",
                "invalid_boolean",
                '{"id":5,"user_id":5,"apartment_id":100,"viewed_at":"2025-01-01 09:00:00.000000",'
                '"is_wishlisted":"maybe","call_to_action":"book_now"}',
                RUN,
            )
        ],
    )


def test_viewing_duplicates_keep_the_smallest_valid_id(frames: Any) -> None:
    rows = [
        view(9, user=9, wish="y"),  # listed first, but 4 has the smaller id
        view(1, user=7),
        view(2, user=7, wish="no"),  # same view as 1, whatever the flag: duplicate
        view(3, user=7),
        view(5, user=8, wish="maybe"),  # invalid: not an original for 6
        view(6, user=8, wish="y"),
        view(4, user=9, wish="n"),
        view(10, user=10),
        view(10, user=10),  # an exact copy of a row: one curated row, not a duplicate
        view(11, user=7, at=V1),  # another moment: not a duplicate
    ]
    check(
        frames,
        "user_viewing",
        rows,
        [
            view_out(1, True, user=7),
            view_out(4, False, user=9),
            view_out(6, True, user=8),
            view_out(10, True, user=10),
            view_out(11, True, user=7, at=V1),
        ],
        [
            rej("user_viewing", rows[0], "duplicate"),
            rej("user_viewing", rows[2], "duplicate"),
            rej("user_viewing", rows[3], "duplicate"),
            rej("user_viewing", rows[4], "invalid_boolean"),
        ],
    )
    raw = frame(frames, rows, RAW_DDL["user_viewing"])
    assert stats("user_viewing", classify("user_viewing", raw, RATES)) == {
        "rows_read": 10,
        "valid": 6,
        "superseded": 1,
        "curated": 5,
        "rejected": 4,
        "rejected_by_reason": {"missing_field": 0, "invalid_boolean": 1, "duplicate": 3},
    }


# --- bookings -------------------------------------------------------------------------------

BK_DEFAULTS = {
    "user": 7,
    "apt_id": 100,
    "booked": datetime(2025, 1, 1, 8, 0),
    "checkin": date(2025, 2, 1),
    "checkout": date(2025, 2, 4),
    "total": D("300.00"),
    "currency": "USD",
    "status": "confirmed",
    "stamp": T0,
}


def bk(id_: int | None = 1, **kw: Any) -> tuple:
    return (id_, *(BK_DEFAULTS | kw).values())


def bk_out(id_: int, usd: D, nights: int, **kw: Any) -> tuple:
    return (*bk(id_, **kw), usd, nights)


def test_bookings_normalisation_money_and_nights(frames: Any) -> None:
    rates = RATES | {"CHF": D("0.5")}
    rows = [
        bk(1, status="CANCELLED "),
        bk(2, status=" Confirmed", currency=" eur", total=D("100.00")),
        bk(3, status="PENDING", total=D("0.00")),  # 0 is a valid total
        bk(4, status="canceled", checkin=date(2024, 2, 28), checkout=date(2024, 3, 1)),
        bk(5, status="Cancelled", currency="chf", total=D("20.05")),
        bk(6, booked=None),
    ]
    check(
        frames,
        "bookings",
        rows,
        [
            bk_out(1, D("300.00"), 3, status="canceled"),
            bk_out(2, D("108.00"), 3, currency="EUR", total=D("100.00")),
            bk_out(3, D("0.00"), 3, status="pending", total=D("0.00")),
            bk_out(
                4,
                D("300.00"),
                2,
                status="canceled",
                checkin=date(2024, 2, 28),
                checkout=date(2024, 3, 1),
            ),
            bk_out(5, D("10.03"), 3, status="canceled", currency="CHF", total=D("20.05")),
            bk_out(6, D("300.00"), 3, booked=None),
        ],
        [],
        rates,
    )


def test_letters_the_engines_case_differently_get_one_answer(frames: Any) -> None:
    # Java lower-cases U+0130 (dotted capital I) to "i" + U+0307 and DuckDB to a plain "i";
    # the transform spells it as Java does first, so both engines give Spark's answer. A zero
    # decimal of scale 7 is written in plain notation in the rejected row's JSON on both.
    rows = [
        attr(1, cityname="\u0130STANBUL"),
        attr(2, cityname="D\u0130YARBAKIR k\u0130lis", latitude=D("0.0000000"), square_feet=0),
    ]
    check(
        frames,
        "apartment_attributes",
        rows,
        [attr_out(1, True, cityname="I\u0307stanbul")],
        [rej("apartment_attributes", rows[1], "invalid_measure")],
    )
    assert '"latitude":0.0000000,' in record("apartment_attributes", rows[1])
    booking = bk(5, status="CONF\u0130RMED")
    check(frames, "bookings", [booking], [], [rej("bookings", booking, "invalid_status")])


def test_bookings_rejections_in_order(frames: Any) -> None:
    feb1 = date(2025, 2, 1)
    bad = {
        "missing_key": [bk(None, user=None)],
        "missing_field": [
            bk(2, user=None),
            bk(3, apt_id=None),
            bk(4, checkin=None),
            bk(5, checkout=None, status="bad"),
        ],
        "invalid_stay": [
            bk(6, checkout=feb1),
            bk(7, checkout=date(2025, 1, 30), total=D("-5.00"), currency="JPY"),
        ],
        "invalid_price": [
            bk(8, total=None, currency=None, status=None),
            bk(9, total=D("-0.01")),
        ],
        "unknown_currency": [bk(10, currency="JPY", status="bad"), bk(11, currency=None)],
        "invalid_status": [
            bk(12, status="refunded"),
            bk(13, status=None),
            bk(14, status="  "),
            bk(15, status="can celled"),
        ],
    }
    rows = [r for group in bad.values() for r in group]
    expected = [rej("bookings", r, reason) for reason, group in bad.items() for r in group]
    expected[6] = (
        "bookings",
        "7",
        "invalid_stay",
        '{"booking_id":7,"user_id":7,"apartment_id":100,"booking_date":"2025-01-01 '
        '08:00:00.000000","checkin_date":"2025-02-01","checkout_date":"2025-01-30",'
        '"total_price":-5.00,"currency":"JPY","booking_status":"confirmed",'
        '"last_modified_timestamp":"2025-01-01 12:00:00.123456"}',
        RUN,
    )
    check(frames, "bookings", rows, [], expected)


def test_bookings_newer_rejected_version_keeps_the_older_valid_one(frames: Any) -> None:
    rows = [
        bk(1, stamp=T0),
        bk(1, stamp=T1, status="refunded"),
        bk(2, stamp=T1, status="pending"),
        bk(2, stamp=T2, status="Cancelled"),
    ]
    check(
        frames,
        "bookings",
        rows,
        [bk_out(1, D("300.00"), 3), bk_out(2, D("300.00"), 3, stamp=T2, status="canceled")],
        [rej("bookings", rows[1], "invalid_status")],
    )


# --- end to end: SQLite -> extract -> run_transform -> Parquet read by DuckDB -----------------


def make_ctx(tmp_path: Path) -> Context:
    env = {
        "RENTALCTL_HOME": str(tmp_path / "home"),
        "RENTALCTL_SOURCE_URL": f"sqlite:///{tmp_path / 'source.db'}",
    }
    ctx = Context(config.load(env=env))
    with open_source(ctx.settings.source, create=True) as source:
        source.ensure_schema(TABLES.values())
    ctx.state.ensure()
    return ctx


def insert(ctx: Context, table: str, rows: list[tuple]) -> None:
    with ctx.source() as source:
        source.write([(source.insert_sql(TABLES[table]), rows)])


def parquet(ctx: Context, kind: str, table: str, sql: str) -> list[tuple]:
    import duckdb

    files = ctx.lake.uri(f"{kind}/{table}/run_id={RUN}") + "/*.parquet"
    # DuckDB would otherwise read the "run_id=" folder as a Hive partition column.
    source = f"read_parquet('{files}', hive_partitioning = false)"
    return duckdb.sql(sql.replace("OUT", source)).fetchall()


AWKWARD_APARTMENTS = [
    (1, "🏠 Zürich \u2013 “quoted” ½", "RentLingo", "1000.00", "eur", "2024-02-29 23:59:59", 1,
     "2025-01-01 00:00:00.000001"),
    (2, 'comma, "double" quote', "", "10.25", "USD", "2024-01-01 00:00:00", 0,
     "2025-01-01 00:00:01.5"),
    (3, "line1\nline2", None, "-5.00", "USD", "2024-01-01 00:00:00", 1,
     "2025-01-01 00:00:02"),
    (4, "crlf\r\nend", "  padded  ", "1.50", "GBP", "2024-01-01 00:00:00", 1,
     "2025-01-01 00:00:03.999999"),
    (5, "", "src", "7.00", "USD", None, 1, "2025-01-01 00:00:04"),
    (6, None, "\\N", "7.00", "JPY", "2024-01-01 00:00:00", 1, "2025-01-01 00:00:05"),
    (1, "older version", "RentLingo", "900.00", "USD", "2024-01-01 00:00:00", 1,
     "2024-12-31 00:00:00"),
    (7, "tab\there", "s", "3.30", "INR", "2024-01-01 00:00:00", 1, "2025-01-01 00:00:06"),
]  # fmt: skip


def test_raw_reader_keeps_the_extract_dialect_exactly(frames: Any, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    insert(ctx, "apartments", AWKWARD_APARTMENTS)
    manifest = steps.extract(ctx, "apartments", RUN)
    raw = read_raw_keys(ctx.lake, frames, "apartments", [f.key for f in manifest.files])
    jan1 = datetime(2024, 1, 1)
    expected = [
        (1, "🏠 Zürich \u2013 “quoted” ½", "RentLingo", D("1000.00"), "eur",
         datetime(2024, 2, 29, 23, 59, 59), 1, datetime(2025, 1, 1, 0, 0, 0, 1)),
        (2, 'comma, "double" quote', "", D("10.25"), "USD", jan1, 0,
         datetime(2025, 1, 1, 0, 0, 1, 500000)),
        (3, "line1\nline2", None, D("-5.00"), "USD", jan1, 1, datetime(2025, 1, 1, 0, 0, 2)),
        (4, "crlf\r\nend", "  padded  ", D("1.50"), "GBP", jan1, 1,
         datetime(2025, 1, 1, 0, 0, 3, 999999)),
        (5, "", "src", D("7.00"), "USD", None, 1, datetime(2025, 1, 1, 0, 0, 4)),
        (6, None, "\\N", D("7.00"), "JPY", jan1, 1, datetime(2025, 1, 1, 0, 0, 5)),
        (1, "older version", "RentLingo", D("900.00"), "USD", jan1, 1, datetime(2024, 12, 31)),
        (7, "tab\there", "s", D("3.30"), "INR", jan1, 1, datetime(2025, 1, 1, 0, 0, 6)),
    ]  # fmt: skip
    assert_frame(raw, expected, RAW_DDL["apartments"])


def test_duckdb_plans_the_classification_once_per_machine(
    duckdb_frames: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classification's SQL, planned by SQLFrame from ``classify``, comes from the SQL cache
    in a later process: the same rows as planning it again, and ``classify`` is not called.
    Other fx rates are another entry; a rate the warehouse cannot hold is refused either way."""
    from rentalctl import sql_cache
    from rentalctl.pipeline import transform_duckdb

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sql_cache, "_stores", {})
    ctx = make_ctx(tmp_path)
    insert(ctx, "apartments", AWKWARD_APARTMENTS)
    manifest = steps.extract(ctx, "apartments", RUN)
    paths = [transform_duckdb.lake_folder(ctx.lake, f.key) for f in manifest.files]

    def rows(frame: Any) -> list[tuple[Any, ...]]:
        return sorted((tuple(r) for r in frame.collect()), key=repr)

    def classified(rates: dict[str, D]) -> list[tuple[Any, ...]]:
        return rows(transform_duckdb.classified(duckdb_frames, "apartments", paths, rates))

    planned = rows(
        classify(
            "apartments",
            read_raw_keys(ctx.lake, duckdb_frames, "apartments", [f.key for f in manifest.files]),
            RATES,
        )
    )
    cold = classified(RATES)
    monkeypatch.setattr(sql_cache, "_stores", {})  # a new process: only the folder remembers
    with monkeypatch.context() as m:
        m.setattr(transform_duckdb, "classify", lambda *a: pytest.fail("planned again"))
        warm = classified(RATES)
    assert cold == warm == planned
    # Written by hand: ids 1 (newest version), 2, 4, 7 curated; 3 (negative price), 5 (no
    # listing date) and 6 (JPY) rejected; the older version of 1 superseded.
    statuses = sorted((r[0], r[-1]) for r in warm)
    assert statuses == [
        (1, "curated"), (1, "superseded"), (2, "curated"), (3, "rejected"), (4, "curated"),
        (5, "rejected"), (6, "rejected"), (7, "curated"),
    ]  # fmt: skip
    with_yen = classified({**RATES, "JPY": D("0.0067")})
    assert sorted((r[0], r[-1]) for r in with_yen) != statuses
    with pytest.raises(ConfigError, match="DECIMAL\\(18,6\\)"):
        classified({**RATES, "EUR": D("1.0800001")})


def test_run_transform_writes_parquet_that_duckdb_reads(frames: Any, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    insert(ctx, "apartments", AWKWARD_APARTMENTS)
    insert(ctx, "apartment_attributes", [
        (1, "housing/rent/apartment", 'Body\nwith, "quotes"', "", "1.5", "2.0", None,
         "Thumbnail", None, "$1,200", "Monthly", 800, None, "  new   york ", "NY",
         "40.7128000", "-74.0060000", "2025-01-01 00:00:00.000000"),
    ])  # fmt: skip
    insert(ctx, "user_viewing", [
        (1, 10, 1, "2025-01-01 10:00:00", "Yes", "book"),
        (2, 10, 1, "2025-01-01 10:00:00", "no", None),
        (3, 11, 1, "2025-01-02 10:00:00", None, "  save  "),
    ])  # fmt: skip
    insert(ctx, "bookings", [
        (1, 7, 1, "2025-01-01 09:00:00", "2025-02-01", "2025-02-03", "200.00", "usd ",
         "CANCELLED ", "2025-01-01 12:00:00.000000"),
        (2, 8, 1, None, "2025-03-01", "2025-03-05", "100.05", "EUR", "Confirmed",
         "2025-01-01 12:00:00.000001"),
        (None, 8, 1, None, "2025-03-01", "2025-03-05", "100.05", "EUR", "pending",
         "2025-01-01 12:00:00.000002"),
        (4, 1, 2, "2024-12-31 23:59:59", "2025-01-01", "2024-12-30", "-5.50", "usd ",
         "pending", "2025-01-01 00:00:00.000000"),
    ])  # fmt: skip
    results = {}
    for name in TABLES:
        steps.extract(ctx, name, RUN)
        results[name] = run_transform(ctx, name, RUN, frames)

    # Types as DuckDB sees them are the curated contract's (VARCHAR has no length in Parquet).
    for name, table in CURATED.items():
        described = parquet(ctx, "curated", name, "DESCRIBE SELECT * FROM OUT")
        assert [(d[0], d[1]) for d in described] == [
            (n, "VARCHAR" if t.startswith("VARCHAR") else t) for n, t in table.columns
        ]
    described = parquet(ctx, "rejected", "bookings", "DESCRIBE SELECT * FROM OUT")
    assert [(d[0], d[1]) for d in described] == [
        (n, "VARCHAR") for n in ("source_table", "record_key", "reason", "record", "run_id")
    ]

    jan1 = datetime(2024, 1, 1)
    curated_apts = [
        (1, "🏠 Zürich \u2013 “quoted” ½", "RentLingo", D("1000.00"), "EUR",
         datetime(2024, 2, 29, 23, 59, 59), True, datetime(2025, 1, 1, 0, 0, 0, 1), D("1080.00")),
        (2, 'comma, "double" quote', None, D("10.25"), "USD", jan1, False,
         datetime(2025, 1, 1, 0, 0, 1, 500000), D("10.25")),
        (4, "crlf end", "padded", D("1.50"), "GBP", jan1, True,
         datetime(2025, 1, 1, 0, 0, 3, 999999), D("1.91")),
        (7, "tab here", "s", D("3.30"), "INR", jan1, True, datetime(2025, 1, 1, 0, 0, 6),
         D("0.04")),
    ]  # fmt: skip
    assert parquet(ctx, "curated", "apartments", "SELECT * FROM OUT ORDER BY id") == curated_apts
    assert parquet(ctx, "rejected", "apartments", "SELECT * FROM OUT ORDER BY record_key") == [
        ("apartments", "3", "invalid_price",
         '{"id":3,"title":"line1\\nline2","source":null,"price":-5.00,"currency":"USD",'
         '"listing_created_on":"2024-01-01 00:00:00.000000","is_active":1,'
         '"last_modified_timestamp":"2025-01-01 00:00:02.000000"}', RUN),
        ("apartments", "5", "missing_date",
         '{"id":5,"title":"","source":"src","price":7.00,"currency":"USD",'
         '"listing_created_on":null,"is_active":1,'
         '"last_modified_timestamp":"2025-01-01 00:00:04.000000"}', RUN),
        ("apartments", "6", "unknown_currency",
         '{"id":6,"title":null,"source":"\\\\N","price":7.00,"currency":"JPY",'
         '"listing_created_on":"2024-01-01 00:00:00.000000","is_active":1,'
         '"last_modified_timestamp":"2025-01-01 00:00:05.000000"}', RUN),
    ]  # fmt: skip
    assert parquet(ctx, "curated", "apartment_attributes", "SELECT * FROM OUT") == [
        (1, "housing/rent/apartment", 'Body with, "quotes"', None, D("1.5"), D("2.0"), None,
         True, None, "$1,200", "Monthly", 800, None, "New York", "NY", D("40.7128000"),
         D("-74.0060000"), datetime(2025, 1, 1)),
    ]  # fmt: skip
    assert parquet(ctx, "curated", "user_viewing", "SELECT * FROM OUT ORDER BY id") == [
        (1, 10, 1, datetime(2025, 1, 1, 10), True, "book"),
        (3, 11, 1, datetime(2025, 1, 2, 10), False, "save"),
    ]
    assert parquet(ctx, "rejected", "user_viewing", "SELECT record_key, reason FROM OUT") == [
        ("2", "duplicate")
    ]
    assert parquet(ctx, "curated", "bookings", "SELECT * FROM OUT ORDER BY booking_id") == [
        (1, 7, 1, datetime(2025, 1, 1, 9), date(2025, 2, 1), date(2025, 2, 3), D("200.00"),
         "USD", "canceled", datetime(2025, 1, 1, 12), D("200.00"), 2),
        (2, 8, 1, None, date(2025, 3, 1), date(2025, 3, 5), D("100.05"), "EUR", "confirmed",
         datetime(2025, 1, 1, 12, 0, 0, 1), D("108.05"), 4),
    ]  # fmt: skip
    assert parquet(
        ctx, "rejected", "bookings", "SELECT record_key, reason FROM OUT ORDER BY record_key"
    ) == [("4", "invalid_stay"), (None, "missing_key")]

    apartments_stats = {
        "rows_read": 8,
        "valid": 5,
        "superseded": 1,
        "curated": 4,
        "rejected": 3,
        "rejected_by_reason": {
            "invalid_value": 0,  # rows quarantined at extraction: none here
            "missing_key": 0,
            "invalid_price": 1,
            "unknown_currency": 1,
            "missing_date": 1,
            "invalid_boolean": 0,
        },
    }
    assert results["apartments"] == apartments_stats
    stats_key = f"curated/apartments/run_id={RUN}/_stats.json"
    assert json.loads(ctx.lake.get_bytes(stats_key)) == apartments_stats
    assert results["apartment_attributes"] == {
        "rows_read": 1,
        "valid": 1,
        "superseded": 0,
        "curated": 1,
        "rejected": 0,
        "rejected_by_reason": {"invalid_value": 0, "missing_key": 0, "invalid_measure": 0},
    }
    assert results["bookings"]["rejected_by_reason"] == {
        "invalid_value": 0,
        "missing_key": 1,
        "missing_field": 0,
        "invalid_stay": 1,
        "invalid_price": 0,
        "unknown_currency": 0,
        "invalid_status": 0,
    }
    # Nothing rejected: no rejected files at all.
    assert ctx.lake.list(f"rejected/apartment_attributes/run_id={RUN}/") == []

    # A retry replaces the run's output and leaves nothing of the first attempt behind.
    ctx.lake.put_bytes(f"curated/apartments/run_id={RUN}/part-00007.parquet", b"stale")
    assert run_transform(ctx, "apartments", RUN, frames) == apartments_stats
    curated_keys = ctx.lake.list(f"curated/apartments/run_id={RUN}/")
    rejected_keys = ctx.lake.list(f"rejected/apartments/run_id={RUN}/")
    if engine_of(frames) == "duckdb":  # one file per folder, named as Spark's data files are
        assert curated_keys == [
            f"curated/apartments/run_id={RUN}/_stats.json",
            f"curated/apartments/run_id={RUN}/part-00000.parquet",
        ]
        assert rejected_keys == [f"rejected/apartments/run_id={RUN}/part-00000.parquet"]
    else:
        part = r"part-00000-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}-c000\.snappy\.parquet"
        assert curated_keys[:2] == [
            f"curated/apartments/run_id={RUN}/_SUCCESS",
            f"curated/apartments/run_id={RUN}/_stats.json",
        ]
        assert len(curated_keys) == 3
        assert re.fullmatch(f"curated/apartments/run_id={RUN}/{part}", curated_keys[2])
        assert rejected_keys[0] == f"rejected/apartments/run_id={RUN}/_SUCCESS"
        assert len(rejected_keys) == 2
        assert re.fullmatch(f"rejected/apartments/run_id={RUN}/{part}", rejected_keys[1])
    assert parquet(ctx, "curated", "apartments", "SELECT * FROM OUT ORDER BY id") == curated_apts


BOOKINGS = [
    (1, 7, 1, "2025-01-01 09:00:00", "2025-02-01", "2025-02-03", "200.00", "USD", "confirmed",
     "2025-01-01 12:00:00.000000"),
    (2, 8, 1, "2025-01-01 09:00:00", "2025-03-01", "2025-03-05", "100.05", "EUR", "pending",
     "2025-01-01 12:00:00.000001"),
    (3, 8, 1, "2025-01-01 09:00:00", "2025-03-01", "2025-03-05", "-1.00", "EUR", "pending",
     "2025-01-01 12:00:00.000001"),
]  # fmt: skip


def _write_nothing(writer: Any, path: str, *args: Any, **kwargs: Any) -> None:
    """As on a cluster whose executors write to their own disks: no file reaches the lake."""


def _write_one_row(writer: Any, path: str, *args: Any, **kwargs: Any) -> None:
    """A writer that loses all rows but one."""
    writer._df.limit(1).write.save(path, format="parquet")


@pytest.mark.parametrize(
    ("writer", "files", "written"), [(_write_nothing, 0, 0), (_write_one_row, 1, 1)]
)
def test_rows_the_writer_loses_fail_the_step(
    spark: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: Any,
    files: int,
    written: int,
) -> None:
    from pyspark.sql.readwriter import DataFrameWriter

    ctx = make_ctx(tmp_path)
    insert(ctx, "bookings", BOOKINGS)
    steps.extract(ctx, "bookings", RUN)
    monkeypatch.setattr(DataFrameWriter, "parquet", writer)
    with pytest.raises(PipelineFailed) as caught:
        run_transform(ctx, "bookings", RUN, spark)
    assert str(caught.value) == (
        f"transform of bookings in run R1 counted 2 curated rows, but the {files} Parquet files "
        f"written to file://{tmp_path}/home/lake/curated/bookings/run_id=R1 hold {written}: "
        "Spark's executors must write where the driver reads (S3; on a Spark cluster, a lake "
        "folder every worker shares at the same path)"
    )
    assert caught.value.exit_code == 1
    # Not complete: no _stats.json, so the merge refuses this run's output.
    assert not ctx.lake.exists(f"curated/bookings/run_id={RUN}/_stats.json")


def test_rows_duckdb_loses_fail_the_step(
    duckdb_frames: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rentalctl.pipeline import transform_duckdb

    ctx = make_ctx(tmp_path)
    insert(ctx, "bookings", BOOKINGS)
    steps.extract(ctx, "bookings", RUN)
    write = transform_duckdb.write_parquet  # the real writer, given all rows but one
    monkeypatch.setattr(
        transform_duckdb, "write_parquet", lambda lake, df, prefix: write(lake, df.limit(1), prefix)
    )
    with pytest.raises(PipelineFailed) as caught:
        run_transform(ctx, "bookings", RUN, duckdb_frames)
    assert str(caught.value) == (
        "transform of bookings in run R1 counted 2 curated rows, but the 1 Parquet files "
        f"written to file://{tmp_path}/home/lake/curated/bookings/run_id=R1 hold 1: DuckDB "
        "wrote fewer rows than it computed (a disk full, or a bug to report)"
    )
    assert not ctx.lake.exists(f"curated/bookings/run_id={RUN}/_stats.json")


def test_the_merge_stages_only_the_data_files_spark_wrote() -> None:
    prefix = "curated/bookings/run_id=R1/"
    listing = [
        f"{prefix}_SUCCESS",
        f"{prefix}_copy.manifest",
        f"{prefix}_stats.json",
        f"{prefix}_temporary/0/_temporary/attempt_1/part-00000-b2-c000.snappy.parquet",
        f"{prefix}part-00000-a1-c000.snappy.parquet",
        f"{prefix}part-00001-a1-c000.snappy.parquet",
        f"{prefix}stale.parquet",
    ]
    assert data_files(prefix, listing) == [
        f"{prefix}part-00000-a1-c000.snappy.parquet",
        f"{prefix}part-00001-a1-c000.snappy.parquet",
    ]


def test_spark_reads_and_writes_the_lake_itself(tmp_path: Path) -> None:
    key = "curated/bookings/run_id=R1"
    local = LocalLake(tmp_path / "lake")
    assert spark_uri(local, key) == f"file://{tmp_path}/lake/curated/bookings/run_id=R1"
    s3 = S3Lake("rentalctl-test-lake", "lake/dev")
    assert spark_uri(s3, key) == "s3://rentalctl-test-lake/lake/dev/curated/bookings/run_id=R1"


class NoSpark:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Spark used for an empty manifest: {name}")


def test_an_empty_manifest_reads_nothing_and_writes_only_stats(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    manifest = steps.extract(ctx, "bookings", RUN)
    assert manifest.files == []
    stale = f"rejected/bookings/run_id={RUN}/part-00000.parquet"
    ctx.lake.put_bytes(stale, b"from an earlier attempt")
    zero = {
        "rows_read": 0,
        "valid": 0,
        "superseded": 0,
        "curated": 0,
        "rejected": 0,
        "rejected_by_reason": {
            "invalid_value": 0,
            "missing_key": 0,
            "missing_field": 0,
            "invalid_stay": 0,
            "invalid_price": 0,
            "unknown_currency": 0,
            "invalid_status": 0,
        },
    }
    assert run_transform(ctx, "bookings", RUN, spark=NoSpark()) == zero  # type: ignore[arg-type]
    assert ctx.lake.list("curated/") == [f"curated/bookings/run_id={RUN}/_stats.json"]
    assert ctx.lake.list("rejected/") == []
    assert json.loads(ctx.lake.get_bytes(f"curated/bookings/run_id={RUN}/_stats.json")) == zero
    assert read_manifest(ctx.lake, "bookings", RUN).rows == 0


def test_missing_java_is_a_resource_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from rentalctl import spark as spark_module
    from rentalctl.errors import ResourceUnavailable

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ResourceUnavailable, match="Spark needs Java 17") as caught:
        spark_module.local_session.__wrapped__("local[*]")
    assert caught.value.exit_code == 3
