"""The only reader of "now".

``PRACTICEPLAN_NOW`` fixes the clock for tests and scripts: an ISO instant with an offset or ``Z``
(``2026-03-01T17:00:00Z``) or a local date-time / date (``2026-03-01T18:00``, ``2026-03-01``) read in the
user's zone (:func:`practiceplan.domain.tz.localize`: gaps move forward, folds take the first instance).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from practiceplan.domain.models import FIRST_DAY, LAST_DAY, day_supported
from practiceplan.domain.tz import localize
from practiceplan.errors import InvalidInputError

UTC = timezone.utc


def now(zone: ZoneInfo | None = None) -> datetime:
    """Current instant as an aware UTC datetime (``zone`` interprets a local PRACTICEPLAN_NOW)."""
    fixed = os.environ.get("PRACTICEPLAN_NOW")
    if fixed:
        return parse_fixed_now(fixed, zone or UTC)
    return datetime.now(UTC)


def parse_fixed_now(text: str, zone: ZoneInfo | timezone) -> datetime:
    value = text.strip()
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise InvalidInputError(
            f"PRACTICEPLAN_NOW={text!r} is not an ISO date-time",
            hint="use e.g. PRACTICEPLAN_NOW=2026-03-01T18:00:00Z",
        ) from None
    try:
        if dt.tzinfo is None:
            dt = localize(dt, zone)
        dt = dt.astimezone(UTC)
        supported = day_supported(dt.astimezone(zone).date())  # the user's day, as every view sees it
    except (OverflowError, ValueError):
        supported = False
    if not supported:
        raise InvalidInputError(
            f"PRACTICEPLAN_NOW={text!r} is outside the supported dates ({FIRST_DAY} to {LAST_DAY})",
            hint="use e.g. PRACTICEPLAN_NOW=2026-03-01T18:00:00Z",
        )
    return dt
