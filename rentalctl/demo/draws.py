"""What the demo generator draws from: weighted choices over the catalog, and the days of a
demand calendar (seasons, weekends, growth).
"""

from __future__ import annotations

import bisect
import math
import random
from datetime import date, timedelta

from rentalctl.demo import catalog as cat


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
