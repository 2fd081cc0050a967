"""Planned sessions: list them, check in (writing the linked logbook entry), undo a check-in."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from practiceplan.domain.models import STATE_ALIASES, SESSION_STATES, counts_from_by_plan, iso_z, new_id
from practiceplan.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from practiceplan.services.session import Session

DEFAULT_RANGE_DAYS = 14
DEADLINE_DAYS = 40  # an `anytime` session is catchable until its plan's next one: look this far past the range


def _wanted_states(status: str | None) -> tuple[str, ...] | None:
    """The effective states ``--status`` asks for (an old stored status is an alias), or None for all."""
    if status is None:
        return None
    if status in SESSION_STATES:
        return (status,)
    if status in STATE_ALIASES:
        return STATE_ALIASES[status]
    raise InvalidInputError(f"--status must be one of {', '.join(SESSION_STATES)}, not '{status}'",
                            hint="e.g. --status missed")


class Occurrences:
    def __init__(self, session: Session) -> None:
        self.s = session

    def between(self, first: date | None, last: date | None, *, plan: str | None = None, status: str | None = None,
                ) -> tuple[date, date, list[dict[str, Any]], dict[str, str]]:
        """Sessions whose start falls on local days ``first``..``last`` (default: today and 13 more days), and
        each one's effective state (done, due, upcoming, missed, skipped, moved, before-plan: the rule `stats`
        uses). ``status`` keeps only one state (or an old stored status: completed, expired, scheduled)."""
        from practiceplan.domain.calendar import session_states
        from practiceplan.domain.occurrences import local_day_start

        s = self.s
        wanted = _wanted_states(status)
        first = first or s.now.astimezone(s.zone).date()
        last = last or first + timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if last < first:
            raise InvalidInputError(f"--to {last} is before --from {first}", hint="swap them, or give a later --to")
        plan_id = s.store.resolve("practice_plan", plan)["id"] if plan else None
        s.plans.extend_horizon()
        end = iso_z(local_day_start(last + timedelta(days=1), s.zone))
        # the sessions after the range decide the deadlines of `anytime` ones in it (until the plan's next)
        found = s.store.occurrences(plan_id=plan_id, start_from=iso_z(local_day_start(first, s.zone)),
                                    start_before=iso_z(local_day_start(last + timedelta(days=DEADLINE_DAYS), s.zone)))
        plans = s.plans.by_id(include_deleted=True)
        states = session_states(found, plans, now=s.now, zone=s.zone, counts_from=counts_from_by_plan(plans.values(), s.me),
                                week_start=s.settings.week_start)
        found = [o for o in found if o["scheduledStart"] < end and (wanted is None or states.get(o["id"]) in wanted)]
        return first, last, found, {o["id"]: states[o["id"]] for o in found if o["id"] in states}

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
            if occ.get("logEntryId"):  # --force: the entry it replaces no longer counts for this session
                self._free(occ["logEntryId"], occ["id"])
        return entry, updated

    def uncheck(self, ref: str, reason: str | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Undo a check-in within the undo window: the session is scheduled again and its logbook entry stays
        as free practice (no longer linked). Returns (that entry, or None if it is gone; the occurrence)."""
        from practiceplan.domain.occurrences import uncheck

        s = self.s
        occ = s.store.resolve("plan_occurrence", ref)
        with s.store.write():
            occ = s.store.get("plan_occurrence", occ["id"]) or occ
            updated = uncheck(occ, now=s.now, undo_minutes=s.settings.config["undo_minutes"], reason=reason)
            s.store.save("plan_occurrence", updated, iso_z(s.now))
            entry = self._free(occ.get("logEntryId"), occ["id"])
        return entry, updated

    def _free(self, entry_id: str | None, occ_id: str) -> dict[str, Any] | None:
        """Inside a write: the entry ``entry_id`` no longer links occurrence ``occ_id`` (it stays as free
        practice). Returns the entry as it is now, or None when there is no such entry."""
        from practiceplan.domain.occurrences import dissociate

        s = self.s
        entry = s.store.get("logbook_entry", entry_id) if entry_id else None
        if entry is None:
            return None
        freed = dissociate(entry, occ_id, now=s.now)
        if freed is None:
            return entry
        s.store.save("logbook_entry", freed, iso_z(s.now))
        return freed
