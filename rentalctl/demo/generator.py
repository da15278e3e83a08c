"""Deterministic synthetic marketplace data, dirty the way real operational data is.

Rows are yielded as tuples in the column order of the table specs, with values as the source
stores them: text dates (ISO 8601), decimals as exact strings. Every kind of dirt that
docs/contract.md §5 handles occurs at a low rate, and at least once at any scale; cosmetic variants
that normalisation must repair (case, whitespace, spelling) are more common.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from rentalctl.demo import catalog as cat

# Sizes at scale 1 (the published lab data set's sizes).
SIZES = {
    "apartments": 200_000,
    "apartment_attributes": 200_000,
    "user_viewing": 300_000,
    "bookings": 500_000,
}
USERS_PER_BOOKING = 0.2

CENT = Decimal("0.01")


def sizes(scale: float) -> dict[str, int]:
    return {t: max(20, round(n * scale)) for t, n in SIZES.items()}


class Clock:
    """Seconds since the start of FIRST_DAY, formatted as the source stores them."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def day(self, index: int) -> str:
        s = self._days.get(index)
        if s is None:
            s = self._days[index] = (cat.FIRST_DAY + timedelta(days=index)).isoformat()
        return s

    def datetime(self, sec: int) -> str:
        d, r = divmod(sec, 86400)
        return f"{self.day(d)} {r // 3600:02d}:{r // 60 % 60:02d}:{r % 60:02d}"

    def micros(self, sec: int, us: int) -> str:
        return f"{self.datetime(sec)}.{us:06d}"


def to_seconds(moment: datetime) -> int:
    return int((moment - datetime.combine(cat.FIRST_DAY, datetime.min.time())).total_seconds())


AS_OF_SEC = to_seconds(cat.AS_OF)


def _room(start: int, span: int) -> int:
    """How far after ``start`` a later change may fall: ``span``, but not past AS_OF."""
    return max(0, min(span, AS_OF_SEC - 1 - start))


class Picker:
    """Weighted choice by bisecting a cumulative table: one random() per draw."""

    def __init__(self, items, weights) -> None:
        self.items = list(items)
        total, self.cum = 0.0, []
        for w in weights:
            total += w
            self.cum.append(total)
        self.total = total

    def __call__(self, rng: random.Random):
        return self.items[
            min(bisect.bisect(self.cum, rng.random() * self.total), len(self.cum) - 1)
        ]


def _season(day: date) -> float:
    """Demand by day: a summer peak, a December bump, weekends busier, and growth over time."""
    doy = day.timetuple().tm_yday
    weight = 1.0 + 0.35 * math.cos(2 * math.pi * (doy - 196) / 365.25)
    if day.month == 12 and day.day >= 15:
        weight += 0.3
    if day.weekday() >= 5:
        weight *= 1.15
    return weight * (1 + 0.4 * (day - cat.FIRST_DAY).days / 820)


DAY_COUNT = (cat.LAST_DAY - cat.FIRST_DAY).days + 1
DAYS = Picker(
    range(DAY_COUNT), [_season(cat.FIRST_DAY + timedelta(days=i)) for i in range(DAY_COUNT)]
)
CITY = Picker(range(len(cat.CITIES)), [c[4] for c in cat.CITIES])
SOURCE = Picker([s for s, _ in cat.SOURCES], [w for _, w in cat.SOURCES])
CURRENCY = Picker([c for c, _ in cat.CURRENCIES], [w for _, w in cat.CURRENCIES])
CATEGORY = Picker([c for c, _ in cat.CATEGORIES], [w for _, w in cat.CATEGORIES])
PETS = Picker([p for p, _ in cat.PETS], [w for _, w in cat.PETS])
CTA = Picker([c for c, _ in cat.CALLS_TO_ACTION], [w for _, w in cat.CALLS_TO_ACTION])
BEDROOMS = Picker([0, 1, 2, 3, 4], [12, 38, 32, 14, 4])
NIGHTS = Picker([1, 2, 3, 4, 5, 6, 7, 10, 14, 21, 28], [6, 16, 16, 12, 10, 7, 14, 5, 7, 3, 4])


def money(value: float | Decimal) -> str:
    return str(Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP))


# --- cosmetic variants: valid after docs/contract.md §5's normalisation --------------------------


def messy_spaces(rng: random.Random, text: str) -> str:
    """Leading/trailing blanks and doubled inner spaces (tabs too)."""
    words = text.split(" ")
    glue = rng.choice(("  ", " \t", "   "))
    return rng.choice((" ", "  ", "\t")) + glue.join(words) + rng.choice((" ", "  ", ""))


def currency_variant(rng: random.Random, code: str) -> str:
    return rng.choice((code.lower(), f" {code}", code.capitalize(), f"{code.lower()} "))


WISHLIST_TRUE = ("yes", "Yes", "Y", "true", "TRUE", "t", "1", " yes ")
WISHLIST_FALSE = ("no", "No", "N", "false", "False", "f", "0", "NO ")
WISHLIST_BAD = ("maybe", "2", "nah", "-", "?")
_WISHLIST_ACCEPTED = {v.strip().lower() for v in WISHLIST_TRUE + WISHLIST_FALSE}
HAS_PHOTO = Picker(
    ["Yes", "Thumbnail", "No", "yes", "THUMBNAIL", " y", "TRUE", "0", "N/A", "unknown", None],
    [56, 23, 12, 1.5, 1, 0.5, 0.5, 0.5, 1, 1, 3],
)


@dataclass
class Listing:
    """What the other tables need to know about an apartment."""

    city: int
    bedrooms: int
    monthly_usd: float
    currency: str
    created: int  # seconds


class Generator:
    """Initial demo data for one (scale, seed)."""

    def __init__(
        self, scale: float, seed: int, listings: dict[int, Listing] | None = None, users: int = 0
    ) -> None:
        self.n = sizes(scale)
        self.seed = seed
        self.clock = Clock()
        self.users = users or max(50, round(self.n["bookings"] * USERS_PER_BOOKING))
        self.listings = self._listings() if listings is None else listings
        self.listing_ids = list(self.listings)

    def pick_listing(self, rng: random.Random, skew: float) -> tuple[int, Listing]:
        """Some apartments draw far more interest than others."""
        apt = self.listing_ids[int(len(self.listing_ids) * rng.random() ** skew)]
        return apt, self.listings[apt]

    def rng(self, table: str) -> random.Random:
        return random.Random(f"rentalctl-demo:{self.seed}:{table}")

    def _listings(self) -> dict[int, Listing]:
        rng = self.rng("listings")
        out = {}
        for apt_id in range(1, self.n["apartments"] + 1):
            city = CITY(rng)
            bedrooms = BEDROOMS(rng)
            level = cat.CITIES[city][5] * (0.65 + 0.3 * bedrooms) * math.exp(rng.gauss(0, 0.18))
            created = DAYS(rng) * 86400 + 28800 + int(rng.random() * 50400)
            out[apt_id] = Listing(city, bedrooms, level, CURRENCY(rng), created)
        return out

    @staticmethod
    def dirt_plan(rng: random.Random, rows: int, kinds: tuple[str, ...]) -> dict[int, str]:
        """Rows that carry each kind of dirt at least once, spread over the table."""
        spots = rng.sample(range(rows), min(rows, len(kinds)))
        return dict(zip(spots, kinds, strict=False))

    @staticmethod
    def dirt(
        rng: random.Random, forced: dict[int, str], i: int, kinds: tuple[str, ...]
    ) -> str | None:
        if i in forced:
            return forced[i]
        r = rng.random()
        k = int(r / cat.DIRT_RATE)
        return kinds[k] if k < len(kinds) else None

    def user(self, rng: random.Random) -> int:
        """Heavy and light users: a few ids account for a large share of the activity."""
        return int(self.users * rng.random() ** 2.2) + 1

    # --- apartments --------------------------------------------------------------------------
    APARTMENT_DIRT = (
        "missing_key",
        "price_null",
        "price_zero",
        "price_negative",
        "unknown_currency",
        "missing_date",
        "is_active_null",
        "duplicate_row",
    )

    def apartments(self) -> Iterator[tuple]:
        rng = self.rng("apartments")
        forced = self.dirt_plan(rng, self.n["apartments"], self.APARTMENT_DIRT)
        for i, (apt_id, listing) in enumerate(self.listings.items()):
            row = self.apartment_row(rng, apt_id, listing)
            kind = self.dirt(rng, forced, i, self.APARTMENT_DIRT)
            if kind == "duplicate_row":
                yield row
            elif kind:
                row = _apply(row, _APARTMENT_DIRT[kind](rng))
            yield row

    def apartment_row(self, rng: random.Random, apt_id: int, listing: Listing) -> tuple:
        city = cat.CITIES[listing.city][0]
        bed = "Studio" if listing.bedrooms == 0 else f"{listing.bedrooms} BR"
        title = rng.choice(
            (
                f"{bed} apartment in {city}",
                f"{bed}, {city} - {rng.choice(cat.STREETS)}",
                f"{bed} {rng.choice(('Luxury', 'Cozy', 'Sunny', 'Modern'))} unit in {city}",
            )
        )
        if rng.random() < 0.03:
            title = messy_spaces(rng, title)
        currency = listing.currency
        price = money(listing.monthly_usd / cat.RATE_TO_USD[currency])
        if rng.random() < 0.03:
            currency = currency_variant(rng, currency)
        source = SOURCE(rng) if rng.random() > 0.004 else rng.choice(("", "  "))
        active = 1 if rng.random() < 0.88 else 0
        modified = listing.created + int(rng.random() * _room(listing.created, 30 * 86400))
        return (
            apt_id,
            title,
            source,
            price,
            currency,
            self.clock.datetime(listing.created),
            active,
            self.clock.micros(modified, int(rng.random() * 1_000_000)),
        )

    # --- apartment_attributes ----------------------------------------------------------------
    ATTRIBUTE_DIRT = (
        "missing_key",
        "negative_bedrooms",
        "negative_bathrooms",
        "zero_square_feet",
        "negative_square_feet",
        "null_city",
    )

    def apartment_attributes(self) -> Iterator[tuple]:
        rng = self.rng("apartment_attributes")
        forced = self.dirt_plan(rng, self.n["apartment_attributes"], self.ATTRIBUTE_DIRT)
        for i in range(self.n["apartment_attributes"]):
            # One attribute row per apartment; past the apartments' count (only when the sizes
            # differ) rows describe unknown apartments.
            listing = self.listings[self.listing_ids[i % len(self.listing_ids)]]
            row = self.attribute_row(rng, i + 1, listing)
            kind = self.dirt(rng, forced, i, self.ATTRIBUTE_DIRT)
            if kind:
                row = _apply(row, _ATTRIBUTE_DIRT[kind](rng))
            yield row

    def attribute_row(self, rng: random.Random, apt_id: int, listing: Listing) -> tuple:
        city, state, lat, lon, _, _ = cat.CITIES[listing.city]
        bed = "studio" if listing.bedrooms == 0 else f"{listing.bedrooms} bedroom apartment"
        body = rng.choice(cat.BODY_OPENERS).format(bed=bed, city=city, hw=rng.randint(5, 95))
        body += ("\n" if rng.random() < 0.4 else " ") + " ".join(rng.sample(cat.BODY_DETAILS, 2))
        amenities = (
            ",".join(rng.sample(cat.AMENITIES, rng.randint(1, 6))) if rng.random() < 0.8 else None
        )
        baths = Decimal(max(1, listing.bedrooms)) * Decimal("0.5") + Decimal(
            rng.choice((0, 0.5, 1))
        )
        sqft = int((380 + 330 * listing.bedrooms) * math.exp(rng.gauss(0, 0.15)))
        price_usd = listing.monthly_usd
        cityname = city
        if rng.random() < 0.04:
            cityname = rng.choice(
                (city.lower(), city.upper(), messy_spaces(rng, city), city.swapcase())
            )
        has_photo = HAS_PHOTO(rng)
        fee = None if rng.random() < 0.7 else money(rng.choice((0, 0, 25, 50, 99.99, 150)))
        address = (
            None if rng.random() < 0.3 else f"{rng.randint(1, 9999)} {rng.choice(cat.STREETS)}"
        )
        modified = listing.created + int(rng.random() * _room(listing.created, 30 * 86400))
        return (
            apt_id,
            CATEGORY(rng),
            body,
            amenities,
            str(baths.quantize(Decimal("0.1"))),
            f"{listing.bedrooms}.0",
            fee,
            has_photo,
            PETS(rng),
            f"${round(price_usd):,}" if listing.currency == "USD" else None,
            "Monthly" if rng.random() < 0.97 else rng.choice(("Weekly", "Monthly|Weekly")),
            sqft,
            address,
            cityname,
            state,
            f"{lat + rng.uniform(-0.12, 0.12):.7f}",
            f"{lon + rng.uniform(-0.12, 0.12):.7f}",
            self.clock.micros(modified, int(rng.random() * 1_000_000)),
        )

    # --- user_viewing ------------------------------------------------------------------------
    VIEWING_DIRT = (
        "null_user",
        "null_apartment",
        "null_viewed_at",
        "bad_wishlist",
        "duplicate_event",
    )

    def user_viewing(self) -> Iterator[tuple]:
        rng = self.rng("user_viewing")
        total = self.n["user_viewing"]
        forced = self.dirt_plan(rng, total, self.VIEWING_DIRT)
        last_valid: tuple | None = None
        for i in range(total):
            kind = self.dirt(rng, forced, i, self.VIEWING_DIRT)
            if kind == "duplicate_event" and last_valid is not None:
                # The same event sent twice by the client, with a fresh id and maybe new flags;
                # a copy of a valid event, so that it is a duplicate and nothing else.
                row = (i + 1, *last_valid[1:4], rng.choice(WISHLIST_TRUE), CTA(rng))
            else:
                if kind == "duplicate_event":
                    forced[i + 1] = kind  # nothing valid to repeat yet: repeat the next one
                row = self.viewing_row(rng, i + 1, DAYS(rng) * 86400 + int(rng.random() * 86400))
                if kind and kind != "duplicate_event":
                    row = _apply(row, _VIEWING_DIRT[kind](rng))
                else:
                    wish = (row[4] or "").strip().lower()
                    if wish in _WISHLIST_ACCEPTED or row[4] is None:
                        last_valid = row
            yield row

    def viewing_row(self, rng: random.Random, view_id: int, sec: int) -> tuple:
        apt, _ = self.pick_listing(rng, 1.6)
        return (
            view_id,
            self.user(rng),
            apt,
            self.clock.datetime(sec),
            self.wishlist(rng),
            CTA(rng),
        )

    @staticmethod
    def wishlist(rng: random.Random) -> str | None:
        r = rng.random()
        if r < 0.05:
            return None
        return rng.choice(WISHLIST_TRUE) if r < 0.3 else rng.choice(WISHLIST_FALSE)

    # --- bookings ----------------------------------------------------------------------------
    BOOKING_DIRT = (
        "missing_key",
        "null_user",
        "null_apartment",
        "null_checkin",
        "null_checkout",
        "checkout_before_checkin",
        "same_day_checkout",
        "null_price",
        "negative_price",
        "unknown_currency",
        "invalid_status",
        "orphan",
    )

    def bookings(self) -> Iterator[tuple]:
        rng = self.rng("bookings")
        forced = self.dirt_plan(rng, self.n["bookings"], self.BOOKING_DIRT)
        for i in range(self.n["bookings"]):
            sec = DAYS(rng) * 86400 + 21600 + int(rng.random() * 64800)
            row = self.booking_row(rng, i + 1, sec, AS_OF_SEC - 1)
            kind = self.dirt(rng, forced, i, self.BOOKING_DIRT)
            if kind == "orphan":
                row = _apply(row, {2: max(self.listing_ids) + rng.randint(1, 5000)})
            elif kind:
                row = _apply(row, _BOOKING_DIRT[kind](rng, row))
            yield row

    def booking_row(self, rng: random.Random, booking_id: int, sec: int, latest: int) -> tuple:
        apt, listing = self.pick_listing(rng, 1.4)
        lead = int(rng.expovariate(1 / 21)) + 1
        nights = NIGHTS(rng)
        checkin = sec // 86400 + lead
        nightly = listing.monthly_usd / 30 * rng.uniform(0.9, 1.35)
        total = money(nightly * nights / cat.RATE_TO_USD[listing.currency])
        currency = listing.currency
        if rng.random() < 0.03:
            currency = currency_variant(rng, currency)
        checkin_sec = checkin * 86400
        r = rng.random()
        if checkin_sec > latest and r < 0.6:
            status = "pending"  # still in the future: not decided yet
        elif r < 0.78:
            status = "confirmed"
        elif r < 0.92:
            status = "canceled"
        else:
            status = "pending"
        if rng.random() < 0.05:
            status = rng.choice(
                (
                    "Confirmed",
                    " confirmed",
                    "CONFIRMED ",
                    "cancelled",
                    "Canceled",
                    "CANCELLED",
                    "Pending",
                )
            )
        modified = sec + int(rng.random() * max(0, min(lead * 86400, latest - sec)))
        return (
            booking_id,
            self.user(rng),
            apt,
            self.clock.datetime(sec),
            self.clock.day(checkin),
            self.clock.day(checkin + nights),
            total,
            currency,
            status,
            self.clock.micros(modified, int(rng.random() * 1_000_000)),
        )


def _apply(row: tuple, changes: dict[int, object]) -> tuple:
    out = list(row)
    for index, value in changes.items():
        out[index] = value
    return tuple(out)


_APARTMENT_DIRT: dict[str, Callable[[random.Random], dict[int, object]]] = {
    "missing_key": lambda rng: {0: None},
    "price_null": lambda rng: {3: None},
    "price_zero": lambda rng: {3: "0.00"},
    "price_negative": lambda rng: {3: money(-rng.randint(1, 2000))},
    "unknown_currency": lambda rng: {4: rng.choice(("CAD", "XXX", "US$", "JPY"))},
    "missing_date": lambda rng: {5: None},
    "is_active_null": lambda rng: {6: None},
}
_ATTRIBUTE_DIRT: dict[str, Callable[[random.Random], dict[int, object]]] = {
    "missing_key": lambda rng: {0: None},
    "negative_bedrooms": lambda rng: {5: "-1.0"},
    "negative_bathrooms": lambda rng: {4: rng.choice(("-1.0", "-0.5"))},
    "zero_square_feet": lambda rng: {11: 0},
    "negative_square_feet": lambda rng: {11: -rng.randint(1, 900)},
    "null_city": lambda rng: {13: None},
}
_VIEWING_DIRT: dict[str, Callable[[random.Random], dict[int, object]]] = {
    "null_user": lambda rng: {1: None},
    "null_apartment": lambda rng: {2: None},
    "null_viewed_at": lambda rng: {3: None},
    "bad_wishlist": lambda rng: {4: rng.choice(WISHLIST_BAD)},
}


def _swap_dates(rng: random.Random, row: tuple) -> dict[int, object]:
    return {4: row[5], 5: row[4]}


_BOOKING_DIRT: dict[str, Callable[[random.Random, tuple], dict[int, object]]] = {
    "missing_key": lambda rng, row: {0: None},
    "null_user": lambda rng, row: {1: None},
    "null_apartment": lambda rng, row: {2: None},
    "null_checkin": lambda rng, row: {4: None},
    "null_checkout": lambda rng, row: {5: None},
    "checkout_before_checkin": _swap_dates,
    "same_day_checkout": lambda rng, row: {5: row[4]},
    "null_price": lambda rng, row: {6: None},
    "negative_price": lambda rng, row: {6: money(-rng.randint(1, 900))},
    "unknown_currency": lambda rng, row: {7: rng.choice(("CAD", "BTC", "XXX"))},
    "invalid_status": lambda rng, row: {8: rng.choice(("refunded", "unknown", "no-show", ""))},
}
