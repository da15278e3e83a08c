"""Run ids: how a run is named, and the one rule every run id is held to.

A run id becomes a lake folder (``run_id=<id>``), a Step Functions execution name and a value
in the warehouse's COPY statements, so it is held to that execution name's rule (letters,
digits, ``.``, ``_`` and ``-``) and to 64 characters: the warehouse's run columns are
VARCHAR(64), and a resumed run's execution name, ``<id>.resume-<n>``, must stay within the 80
an execution name may have.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

from rentalctl.errors import InvalidSetting

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: ``20250401T030000Z-1a2b3c``."""
    moment = now or datetime.now(timezone.utc)
    return f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def check_run_id(run_id: str, key: str = "--run-id") -> str:
    """``run_id`` when it follows the rule; else InvalidSetting naming ``key``."""
    if not _RUN_ID.fullmatch(run_id):
        raise InvalidSetting(key, run_id, "letters, digits, '.', '_' and '-' (64 at most)")
    return run_id
