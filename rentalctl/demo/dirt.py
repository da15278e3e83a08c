"""Dirt in the demo data: cosmetic variants that docs/contract.md §5's normalisation repairs,
and, per table, the changes that make a row invalid for one reason (keyed by the kinds of dirt
the generator plans).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from rentalctl.demo.draws import Picker
from rentalctl.demo.formats import money

# --- cosmetic variants: valid after docs/contract.md §5's normalisation ----------------------


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
WISHLIST_ACCEPTED = {v.strip().lower() for v in WISHLIST_TRUE + WISHLIST_FALSE}
HAS_PHOTO = Picker(
    ["Yes", "Thumbnail", "No", "yes", "THUMBNAIL", " y", "TRUE", "0", "N/A", "unknown", None],
    [56, 23, 12, 1.5, 1, 0.5, 0.5, 0.5, 1, 1, 3],
)


# --- invalid rows: per kind of dirt, the columns (by index) it changes -----------------------


def apply(row: tuple, changes: dict[int, object]) -> tuple:
    out = list(row)
    for index, value in changes.items():
        out[index] = value
    return tuple(out)


APARTMENTS: dict[str, Callable[[random.Random], dict[int, object]]] = {
    "missing_key": lambda rng: {0: None},
    "price_null": lambda rng: {3: None},
    "price_zero": lambda rng: {3: "0.00"},
    "price_negative": lambda rng: {3: money(-rng.randint(1, 2000))},
    "unknown_currency": lambda rng: {4: rng.choice(("CAD", "XXX", "US$", "JPY"))},
    "missing_date": lambda rng: {5: None},
    "is_active_null": lambda rng: {6: None},
}
ATTRIBUTES: dict[str, Callable[[random.Random], dict[int, object]]] = {
    "missing_key": lambda rng: {0: None},
    "negative_bedrooms": lambda rng: {5: "-1.0"},
    "negative_bathrooms": lambda rng: {4: rng.choice(("-1.0", "-0.5"))},
    "zero_square_feet": lambda rng: {11: 0},
    "negative_square_feet": lambda rng: {11: -rng.randint(1, 900)},
    "null_city": lambda rng: {13: None},
}
VIEWINGS: dict[str, Callable[[random.Random], dict[int, object]]] = {
    "null_user": lambda rng: {1: None},
    "null_apartment": lambda rng: {2: None},
    "null_viewed_at": lambda rng: {3: None},
    "bad_wishlist": lambda rng: {4: rng.choice(WISHLIST_BAD)},
}


def _swap_dates(rng: random.Random, row: tuple) -> dict[int, object]:
    return {4: row[5], 5: row[4]}


BOOKINGS: dict[str, Callable[[random.Random, tuple], dict[int, object]]] = {
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
