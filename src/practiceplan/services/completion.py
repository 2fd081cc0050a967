"""Values for shell completion (`practiceplan __complete SHELL KIND PREFIX`, run by the static scripts in
completions/ on Tab): plan ids and titles, deleted plans, sessions near today, template ids and titles, time
zones.

This runs on every Tab press, so it stays small: no Session, no Typer, no Rich, no sqlite_utils; the database is
opened read-only and never migrated, created or written. Anything that goes wrong gives no values.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from practiceplan.settings import Settings

if TYPE_CHECKING:
    from practiceplan.store.repo import Store

KINDS = ("plan", "deleted-plan", "occurrence", "template", "zone")
SESSION_WINDOW = timedelta(days=14)  # sessions this far back and ahead of now are offered
LIMIT = 50


def values(kind: str, prefix: str, settings: Settings | None = None) -> list[tuple[str, str]]:
    """(value, description) pairs for ``kind`` starting with ``prefix``."""
    if kind == "zone":
        return [(name, "") for name in zones() if name.casefold().startswith(prefix.casefold())]
    if kind not in KINDS:
        return []
    from practiceplan.store import completion as sc

    settings = settings or Settings()
    store = sc.open_read_only(settings.db_path)
    if store is None:
        return []
    try:
        if kind == "occurrence":
            return _sessions(store, prefix, settings)
        if kind == "template":
            return sc.templates(store, prefix)
        return sc.plans(store, prefix, deleted=kind == "deleted-plan")
    finally:
        store.close()


def _sessions(store: Store, prefix: str, settings: Settings) -> list[tuple[str, str]]:
    from practiceplan import clock
    from practiceplan.domain.models import iso_z, parse_instant
    from practiceplan.store import completion as sc

    now = clock.now(settings.zone)
    found = sc.occurrences(store, prefix, iso_z(now - SESSION_WINDOW), iso_z(now + SESSION_WINDOW))

    def nearest(occ: dict[str, Any]) -> tuple[bool, float]:  # still to do first, then the closest to now
        start = parse_instant(occ["start"])
        return occ["status"] != "scheduled", abs((start - now).total_seconds()) if start else float("inf")

    result = []
    for occ in sorted(found, key=nearest)[:LIMIT]:
        start = parse_instant(occ["start"])
        when = start.astimezone(settings.zone).strftime("%a %d %b %H:%M") if start else "?"
        result.append((occ["shortId"], f"{when} {occ['title']} ({occ['status']})"))
    return result


def zones() -> list[str]:
    """The IANA zone names (from the tzdata package's list when it is there: much faster than scanning)."""
    try:
        from importlib import resources

        text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
        return sorted(line.strip() for line in text.splitlines() if line.strip())
    except (ImportError, OSError):
        import zoneinfo

        return sorted(zoneinfo.available_timezones())
