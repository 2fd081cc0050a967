"""Durations typed by users (``--cap``, ``--within``, ``--grace``, ``--expires``): ``45m``, ``90``, ``1h30``,
``7d`` -> minutes."""

from __future__ import annotations

import re

from practiceplan.errors import InvalidInputError

_DURATION = re.compile(r"^(?:(\d{1,4})\s*h(?:ours?|rs?)?)?\s*(?:(\d{1,5})\s*m(?:in(?:utes?|s)?)?)?$")
_DAYS = re.compile(r"^(\d{1,4})\s*d(?:ays?)?$")
_HINT = "use minutes, hours or days, e.g. 45m, 90, 1h30, 7d"


def parse_minutes(text: str, what: str, *, minimum: int = 0, maximum: int = 10_080) -> int:
    """``"45m"``, ``"45"``, ``"1h"``, ``"1h30"``, ``"1h30m"``, ``"90 min"``, ``"7d"`` -> minutes."""
    value = (text or "").strip().lower()
    minutes: int | None = None
    days = _DAYS.match(value)
    if value.isdigit():
        minutes = int(value)
    elif days:
        minutes = int(days[1]) * 1440
    elif value:
        match = _DURATION.match(value)
        if match is None and re.fullmatch(r"\d{1,4}\s*h\s*\d{1,2}", value):
            hours, _, rest = value.partition("h")
            minutes = int(hours) * 60 + int(rest)
        elif match and (match[1] or match[2]):
            minutes = int(match[1] or 0) * 60 + int(match[2] or 0)
    if minutes is None:
        raise InvalidInputError(f"{what} '{text}' is not a duration", hint=_HINT)
    if not minimum <= minutes <= maximum:
        raise InvalidInputError(f"{what} must be between {minimum} and {maximum} minutes, not {minutes}", hint=_HINT)
    return minutes
