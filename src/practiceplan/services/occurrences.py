"""Planned sessions: list them, check in (writing the linked logbook entry), undo a check-in."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from practiceplan.domain.models import iso_z, new_id
from practiceplan.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from practiceplan.services.session import Session

DEFAULT_RANGE_DAYS = 14


class Occurrences:
    def __init__(self, session: Session) -> None:
        self.s = session

    def between(self, first: date | None, last: date | None, *, plan: str | None = None,
                status: str | None = None) -> tuple[date, date, list[dict[str, Any]]]:
        """Sessions whose start falls on local days ``first``..``last`` (default: today and 13 more days)."""
        from practiceplan.domain.occurrences import local_day_start

        s = self.s
        first = first or s.now.astimezone(s.zone).date()
        last = last or first + timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if last < first:
            raise InvalidInputError(f"--to {last} is before --from {first}")
        plan_id = s.store.resolve("practice_plan", plan)["id"] if plan else None
        s.plans.extend_horizon()
        found = s.store.occurrences(
            plan_id=plan_id,
            start_from=iso_z(local_day_start(first, s.zone)),
            start_before=iso_z(local_day_start(last + timedelta(days=1), s.zone)),
            status=status,
        )
        return first, last, found

    def checkin(self, ref: str, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Complete a session: the logbook entry and the occurrence link to each other, in one transaction."""
        from practiceplan.domain.occurrences import checkin

        s = self.s
        occ = s.store.resolve("plan_occurrence", ref)
        plan = s.store.get("practice_plan", occ["planId"], include_deleted=True)
        if plan is None:
            raise NotFoundError(f"the plan of occurrence {occ['id']} is missing")
        with s.store.write():
            occ = s.store.get("plan_occurrence", occ["id"]) or occ
            entry, updated = checkin(
                plan,
                occ,
                now=s.now,
                entry_id=new_id("entry"),
                user_zone=s.zone.key,
                default_instrument=s.settings.config["instrument"],
                **options,
            )
            stamp = iso_z(s.now)
            s.store.save("logbook_entry", entry, stamp)
            s.store.save("plan_occurrence", updated, stamp)
        return entry, updated

    def uncheck(self, ref: str, reason: str | None) -> dict[str, Any]:
        """Undo a check-in within the undo window; the logbook entry stays."""
        from practiceplan.domain.occurrences import uncheck

        s = self.s
        occ = s.store.resolve("plan_occurrence", ref)
        with s.store.write():
            occ = s.store.get("plan_occurrence", occ["id"]) or occ
            updated = uncheck(occ, now=s.now, undo_minutes=s.settings.config["undo_minutes"], reason=reason)
            s.store.save("plan_occurrence", updated, iso_z(s.now))
        return updated
