"""Deterministic synthetic marketplace data, dirty the way real operational data is.

Rows are yielded as tuples in the column order of the table specs, with values as the source
stores them: text dates (ISO 8601), decimals as exact strings. Every kind of dirt that
docs/contract.md §5 handles occurs at a low rate, and at least once at any scale; cosmetic variants
that normalisation must repair (case, whitespace, spelling) are more common.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from rentalctl.demo import catalog as cat
from rentalctl.demo import dirt
from rentalctl.demo.draws import BEDROOMS, CATEGORY, CITY, CTA, CURRENCY, DAYS, NIGHTS, PETS, SOURCE
from rentalctl.demo.formats import AS_OF_SEC, Clock, money

# Sizes at scale 1 (the published lab data set's sizes).
SIZES = {
    "apartments": 200_000,
    "apartment_attributes": 200_000,
    "user_viewing": 300_000,
    "bookings": 500_000,
}
USERS_PER_BOOKING = 0.2


def sizes(scale: float) -> dict[str, int]:
    return {t: max(20, round(n * scale)) for t, n in SIZES.items()}


def _room(start: int, span: int) -> int:
    """How far after ``start`` a later change may fall: ``span``, but not past AS_OF."""
    return max(0, min(span, AS_OF_SEC - 1 - start))


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
    def dirt_kind(
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
            kind = self.dirt_kind(rng, forced, i, self.APARTMENT_DIRT)
            if kind == "duplicate_row":
                yield row
            elif kind:
                row = dirt.apply(row, dirt.APARTMENTS[kind](rng))
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
            title = dirt.messy_spaces(rng, title)
        currency = listing.currency
        price = money(listing.monthly_usd / cat.RATE_TO_USD[currency])
        if rng.random() < 0.03:
            currency = dirt.currency_variant(rng, currency)
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
            kind = self.dirt_kind(rng, forced, i, self.ATTRIBUTE_DIRT)
            if kind:
                row = dirt.apply(row, dirt.ATTRIBUTES[kind](rng))
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
                (city.lower(), city.upper(), dirt.messy_spaces(rng, city), city.swapcase())
            )
        has_photo = dirt.HAS_PHOTO(rng)
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
            kind = self.dirt_kind(rng, forced, i, self.VIEWING_DIRT)
            if kind == "duplicate_event" and last_valid is not None:
                # The same event sent twice by the client, with a fresh id and maybe new flags;
                # a copy of a valid event, so that it is a duplicate and nothing else.
                row = (i + 1, *last_valid[1:4], rng.choice(dirt.WISHLIST_TRUE), CTA(rng))
            else:
                if kind == "duplicate_event":
                    forced[i + 1] = kind  # nothing valid to repeat yet: repeat the next one
                row = self.viewing_row(rng, i + 1, DAYS(rng) * 86400 + int(rng.random() * 86400))
                if kind and kind != "duplicate_event":
                    row = dirt.apply(row, dirt.VIEWINGS[kind](rng))
                else:
                    wish = (row[4] or "").strip().lower()
                    if wish in dirt.WISHLIST_ACCEPTED or row[4] is None:
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
        return rng.choice(dirt.WISHLIST_TRUE) if r < 0.3 else rng.choice(dirt.WISHLIST_FALSE)

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
            kind = self.dirt_kind(rng, forced, i, self.BOOKING_DIRT)
            if kind == "orphan":
                row = dirt.apply(row, {2: max(self.listing_ids) + rng.randint(1, 5000)})
            elif kind:
                row = dirt.apply(row, dirt.BOOKINGS[kind](rng, row))
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
            currency = dirt.currency_variant(rng, currency)
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
