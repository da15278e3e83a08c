"""Values as the demo source stores them: text dates and times (ISO 8601) counted in seconds
from the catalog's first day, and money as exact decimal strings.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from rentalctl.demo import catalog as cat

CENT = Decimal("0.01")


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


def money(value: float | Decimal) -> str:
    return str(Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP))
