"""Plans: add, edit, archive or re-activate, delete, list, show; and the rolling horizon of their sessions."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from practiceplan import clock
from practiceplan.domain.models import is_touched, iso_z, parse_instant, plan_is_live
from practiceplan.errors import InvalidInputError

if TYPE_CHECKING:
    from practiceplan.domain.occurrences import SessionChanges
    from practiceplan.domain.plans import PlanInput
    from practiceplan.services.session import Session

PLAN_FLOOR = datetime(1970, 1, 1, tzinfo=clock.UTC)  # a new plan's sessions are materialised from its start
# A clock that jumped far past the sessions planned so far (a laptop off for a year, a wrong clock): the horizon
# grows from the present, creating at most this much of the gap (about 73,000 daily sessions otherwise for a
# jump to 2099); the rest is skipped and said (Session.notices).
CATCH_UP = timedelta(days=90)
EDIT_REACH = timedelta(days=3660)  # `plan edit` regenerates existing sessions at most this far ahead (the largest horizon)


class Plans:
    def __init__(self, session: Session) -> None:
        self.s = session

    # ------------------------------------------------------------------ horizon

    def extend_horizon(self) -> int:
        """Materialise occurrences of active plans up to now + horizon. Writes only when a plan is behind."""
        from practiceplan.domain.occurrences import reconcile

        s = self.s
        if s.store.read_only:
            return 0  # a database we may not write is read as it is
        target = s.horizon_target()
        # Re-extend at most once a day per plan, so read commands rarely write.
        behind_before = iso_z(target - timedelta(days=1))
        stale = [pid for pid, h in s.store.plan_horizons().items() if not h or h < behind_before]
        if not stale:
            return 0
        written = 0
        skipped: list[tuple[str, datetime]] = []
        with s.store.write():
            for plan_id in stale:
                plan = s.store.get("practice_plan", plan_id)
                if plan is None or not plan_is_live(plan):
                    continue
                horizon = s.store.plan_horizon(plan_id)
                if horizon and horizon >= behind_before:
                    continue  # another process extended it while we waited for the lock
                start = (parse_instant(horizon) if horizon else None) or PLAN_FLOOR
                if start < s.now - CATCH_UP:
                    if horizon:
                        skipped.append((str(plan.get("title") or plan_id), start))
                    start = s.now - CATCH_UP
                existing = s.store.occurrences(plan_id=plan_id, include_deleted=True)
                changes = reconcile(plan, existing, s.zone.key, start, target, s.now)
                written += s.store.save_many("plan_occurrence", changes, iso_z(s.now))
                s.store.set_horizon(plan_id, iso_z(target))
        for title, since in skipped:
            s.notices.append(
                f"the clock is {(s.now - since).days} days past the sessions planned so far for '{title}': "
                f"sessions between {since.astimezone(s.zone):%Y-%m-%d} and "
                f"{(s.now - CATCH_UP).astimezone(s.zone):%Y-%m-%d} were not created (planning resumes "
                f"{CATCH_UP.days} days back from now)")
        return written

    # ------------------------------------------------------------------ actions

    def add(self, inp: PlanInput) -> tuple[dict[str, Any], int]:
        """A new plan and its sessions up to the horizon. Returns (plan, sessions created)."""
        from practiceplan.domain.plans import apply_input

        plan = apply_input(None, inp, now=self.s.now, default_zone=self.s.zone.key)
        return plan, self.save_new(plan)

    def edit(self, ref: str, inp: PlanInput, *, dry_run: bool = False) -> tuple[dict[str, Any], SessionChanges]:
        """Edit a plan; untouched occurrences from now on are regenerated, decisions are kept. ``dry_run``
        computes the same result and writes nothing."""
        from practiceplan.domain.plans import apply_input

        s = self.s
        plan = s.store.resolve("practice_plan", ref)
        _may_change(s, plan)
        apply_input(plan, inp, now=s.now, default_zone=s.zone.key)  # validate before the transaction opens

        def edited(current: dict[str, Any]) -> dict[str, Any]:
            return apply_input(current, inp, now=s.now, default_zone=s.zone.key)

        return self.save_edit(plan, edited, dry_run=dry_run)

    def save_new(self, plan: dict[str, Any], also: Callable[[int], None] | None = None) -> int:
        """Save a new plan with its sessions up to the horizon in one transaction; ``also(count)`` runs inside it
        (template adoption records its event there). Returns the number of sessions created."""
        from practiceplan.domain.occurrences import reconcile

        s = self.s
        target = s.horizon_target()
        occurrences = reconcile(plan, [], s.zone.key, PLAN_FLOOR, target, s.now)
        with s.store.write():
            s.store.save("practice_plan", plan, iso_z(s.now))
            s.store.save_many("plan_occurrence", occurrences, iso_z(s.now))
            s.store.set_horizon(plan["id"], iso_z(target))
            if also is not None:
                also(len(occurrences))
        return len(occurrences)

    def save_edit(self, plan: dict[str, Any], edit: Callable[[dict[str, Any]], dict[str, Any]],
                  also: Callable[[int], None] | None = None, *, dry_run: bool = False,
                  ) -> tuple[dict[str, Any], SessionChanges]:
        """Replace ``plan`` by ``edit(current)`` and regenerate its untouched sessions from now on, in one
        transaction; ``also(count)`` runs inside it. Returns (edited plan, what happened to its sessions);
        ``dry_run`` writes nothing."""
        from practiceplan.domain.occurrences import reconcile, session_changes

        s = self.s
        _may_change(s, plan)
        with s.store.write() if not dry_run else nullcontext():
            current = s.store.get("practice_plan", plan["id"])
            if current is None:
                raise InvalidInputError(f"plan '{plan.get('title')}' was deleted meanwhile; nothing changed",
                                        hint="see the plans with `practiceplan plan list`")
            edited = edit(current)
            existing = s.store.occurrences(plan_id=plan["id"], include_deleted=True)
            # up to the horizon, and beyond it as far as sessions exist (a larger horizon before, an import):
            # no session keeps the old time
            latest = max(_starts(existing), default=s.now) + timedelta(minutes=1)
            target = max(s.horizon_target(), min(latest, s.now + EDIT_REACH))
            changes = []
            if plan_is_live(edited):
                changes = reconcile(edited, existing, s.zone.key, s.now, target, s.now)
            if dry_run:
                return edited, session_changes(existing, changes)
            s.store.save("practice_plan", edited, iso_z(s.now))
            s.store.save_many("plan_occurrence", changes, iso_z(s.now))
            s.store.set_horizon(plan["id"], iso_z(target) if plan_is_live(edited) else None)
            if also is not None:
                also(len(changes))
        return edited, session_changes(existing, changes)

    def set_status(self, ref: str, status: str) -> tuple[dict[str, Any], SessionChanges]:
        """Archive (drop untouched future sessions) or re-activate (regenerate them) a plan."""
        from practiceplan.domain.occurrences import reconcile, session_changes

        s = self.s
        plan = s.store.resolve("practice_plan", ref)
        _may_change(s, plan)
        if plan.get("status") == status:
            raise InvalidInputError(f"plan '{plan.get('title')}' is already {status}",
                                    hint="see the plans with `practiceplan plan list --all`")
        stamp = iso_z(s.now)
        updated = {**plan, "status": status, "updatedAt": stamp, "archivedAt": stamp if status == "archived" else None}
        target = s.horizon_target()
        with s.store.write():
            existing = s.store.occurrences(plan_id=plan["id"], include_deleted=True)
            if status == "active":
                changes = reconcile(updated, existing, s.zone.key, s.now, target, s.now)
            else:
                changes = [
                    {**o, "deletedAt": stamp, "updatedAt": stamp}
                    for o in existing
                    if not o.get("deletedAt") and not is_touched(o) and (o.get("scheduledStart") or "") >= stamp
                ]
            s.store.save("practice_plan", updated, stamp)
            s.store.save_many("plan_occurrence", changes, stamp)
            s.store.set_horizon(plan["id"], iso_z(target) if status == "active" else None)
        return updated, session_changes(existing, changes)

    def delete(self, ref: str, *, dry_run: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Soft-delete a plan and all of its occurrences (tombstones sync as deletions); `restore` undoes it.
        Returns (the deleted plan, the sessions deleted with it); ``dry_run`` writes nothing."""
        s = self.s
        plan = s.store.resolve("practice_plan", ref)
        _may_change(s, plan, "delete")
        stamp = iso_z(s.now)
        deleted = {**plan, "deletedAt": stamp, "updatedAt": stamp}
        with s.store.write() if not dry_run else nullcontext():
            gone = [{**o, "deletedAt": stamp, "updatedAt": stamp} for o in s.store.occurrences(plan_id=plan["id"])]
            if dry_run:
                return deleted, gone
            s.store.save("practice_plan", deleted, stamp)
            s.store.save_many("plan_occurrence", gone, stamp)
            s.store.set_horizon(plan["id"], None)
        return deleted, gone

    def restore(self, ref: str) -> tuple[dict[str, Any], SessionChanges]:
        """Undelete a deleted plan: the sessions deleted with it come back, and (when it is active) its
        untouched sessions from now on are regenerated, as after an edit."""
        from practiceplan.domain.occurrences import reconcile, session_changes

        s = self.s
        plan = s.store.resolve("practice_plan", ref, deleted=True)
        _may_change(s, plan, "delete")
        stamp = iso_z(s.now)
        restored = {k: v for k, v in plan.items() if k != "deletedAt"}
        restored["updatedAt"] = stamp
        target = s.horizon_target()
        with s.store.write():
            existing = s.store.occurrences(plan_id=plan["id"], include_deleted=True)
            revived = [{**{k: v for k, v in o.items() if k != "deletedAt"}, "updatedAt": stamp}
                       for o in existing if o.get("deletedAt") == plan["deletedAt"]]
            changes = revived
            if plan_is_live(restored):
                after = {o["id"]: o for o in [*existing, *revived]}
                regenerated = reconcile(restored, list(after.values()), s.zone.key, s.now, target, s.now)
                changes = list({o["id"]: o for o in [*revived, *regenerated]}.values())
            s.store.save("practice_plan", restored, stamp)
            s.store.save_many("plan_occurrence", changes, stamp)
            s.store.set_horizon(plan["id"], iso_z(target) if plan_is_live(restored) else None)
        return restored, session_changes(existing, changes)

    # ------------------------------------------------------------------ reads

    def notes(self, plan: dict[str, Any]) -> list[str]:
        """What to know about the plan's schedule (e.g. the months a monthly rule on the 31st skips)."""
        from practiceplan.domain.plans import schedule_notes

        return schedule_notes(plan, self.s.zone.key)

    def by_id(self, include_deleted: bool = False) -> dict[str, dict[str, Any]]:
        return {p["id"]: p for p in self.s.store.plans(include_deleted=include_deleted)}

    def listing(self, include_archived: bool = False, deleted: bool = False) -> list[dict[str, Any]]:
        """Plans sorted by title (active ones, or all with ``include_archived``; ``deleted``: the deleted ones)."""
        if deleted:
            plans = [x for x in self.s.store.plans(include_deleted=True) if x.get("deletedAt")]
        else:
            plans = [x for x in self.s.store.plans() if include_archived or x.get("status", "active") == "active"]
        plans.sort(key=lambda x: ((x.get("title") or "").lower(), x["id"]))
        return plans

    def show(self, ref: str, upcoming: int = 5) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One plan and its next ``upcoming`` sessions."""
        s = self.s
        plan = s.store.resolve("practice_plan", ref)
        self.extend_horizon()
        return plan, s.store.occurrences(plan_id=plan["id"], start_from=iso_z(s.now), limit=upcoming)


def _may_change(session: Session, plan: dict[str, Any], action: str = "edit") -> None:
    """A plan shared with you below edit (or, to delete or restore it, one you do not own) is refused, exit 77."""
    from practiceplan.services.sharing import check_can_change

    check_can_change(session, plan, action)


def _starts(occurrences: list[dict[str, Any]]) -> list[datetime]:
    """The starts of the live sessions among ``occurrences``."""
    return [start for o in occurrences if not o.get("deletedAt") and (start := parse_instant(o.get("scheduledStart")))]
