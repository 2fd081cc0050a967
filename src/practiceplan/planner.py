"""Application services: one function per user action, each one transaction.

The CLI parses options, calls one of these and renders the result; tests and scripts can call them
directly. Everything is validated before the write transaction opens, and each write runs in a single
``BEGIN IMMEDIATE`` transaction together with its outbox rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan import clock
from practiceplan.domain.models import epoch_ms, iso_z, new_id, normalize_entry, parse_instant, plan_is_live
from practiceplan.errors import InvalidInputError, NotFoundError
from practiceplan.settings import Settings
from practiceplan.store.repo import Store



@dataclass
class Planner:
    settings: Settings = field(default_factory=Settings)

    @cached_property
    def zone(self) -> ZoneInfo:
        return self.settings.zone

    _now: datetime | None = None

    @property
    def now(self) -> datetime:
        """The clock for this invocation, read once (PRACTICEPLAN_NOW fixes it)."""
        if self._now is None:
            self._now = clock.now(self.zone)
        return self._now

    def at(self, moment: datetime) -> Planner:
        """Act as if it were ``moment`` (demo data, tests)."""
        self._now = moment
        return self

    @cached_property
    def store(self) -> Store:
        return Store.open(self.settings.db_path)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    # ------------------------------------------------------------------ horizon

    def horizon_target(self) -> datetime:
        return self.now + timedelta(days=self.settings.config["horizon_days"])

    def ensure_horizon(self) -> int:
        """Materialise occurrences of active plans up to now + horizon. Writes only when a plan is behind."""
        target = self.horizon_target()
        # Re-extend at most once a day per plan, so read commands rarely write.
        behind_before = iso_z(target - timedelta(days=1))
        stale = [pid for pid, h in self.store.plan_horizons().items() if not h or h < behind_before]
        if not stale:
            return 0
        from practiceplan.domain.occurrences import reconcile

        written = 0
        with self.store.write():
            for plan_id in stale:
                plan = self.store.get("practice_plan", plan_id)
                if plan is None or not plan_is_live(plan):
                    continue
                horizon = self.store.plan_horizon(plan_id)
                if horizon and horizon >= behind_before:
                    continue  # another process extended it while we waited for the lock
                start = parse_instant(horizon) if horizon else None
                start = start or self._plan_floor()
                existing = self.store.occurrences(plan_id=plan_id, include_deleted=True)
                changes = reconcile(plan, existing, self.zone.key, start, target, self.now)
                written += self.store.save_many("plan_occurrence", changes, iso_z(self.now))
                self.store.set_horizon(plan_id, iso_z(target))
        return written

    @staticmethod
    def _plan_floor() -> datetime:
        return datetime(1970, 1, 1, tzinfo=clock.UTC)

    # ------------------------------------------------------------------ plans

    def add_plan(self, inp: Any) -> tuple[dict[str, Any], int]:
        from practiceplan.domain.occurrences import reconcile
        from practiceplan.domain.plans import apply_input

        plan = apply_input(None, inp, now=self.now, default_zone=self.zone.key)
        target = self.horizon_target()
        occurrences = reconcile(plan, [], self.zone.key, self._plan_floor(), target, self.now)
        with self.store.write():
            self.store.save("practice_plan", plan, iso_z(self.now))
            self.store.save_many("plan_occurrence", occurrences, iso_z(self.now))
            self.store.set_horizon(plan["id"], iso_z(target))
        return plan, len(occurrences)

    def edit_plan(self, ref: str, inp: Any) -> tuple[dict[str, Any], int]:
        """Edit a plan; untouched occurrences from now on are regenerated, decisions are kept."""
        from practiceplan.domain.occurrences import reconcile
        from practiceplan.domain.plans import apply_input

        plan = self.store.resolve("practice_plan", ref)
        edited = apply_input(plan, inp, now=self.now, default_zone=self.zone.key)
        target = self.horizon_target()
        with self.store.write():
            current = self.store.get("practice_plan", plan["id"])
            if current != plan:
                edited = apply_input(current, inp, now=self.now, default_zone=self.zone.key)
            existing = self.store.occurrences(plan_id=plan["id"], include_deleted=True)
            changes = []
            if plan_is_live(edited):
                changes = reconcile(edited, existing, self.zone.key, self.now, target, self.now)
            self.store.save("practice_plan", edited, iso_z(self.now))
            self.store.save_many("plan_occurrence", changes, iso_z(self.now))
            self.store.set_horizon(plan["id"], iso_z(target) if plan_is_live(edited) else None)
        return edited, len(changes)

    def set_plan_status(self, ref: str, status: str) -> tuple[dict[str, Any], int]:
        """Archive (drop untouched future sessions) or re-activate (regenerate them) a plan."""
        from practiceplan.domain.occurrences import reconcile

        plan = self.store.resolve("practice_plan", ref)
        if plan.get("status") == status:
            raise InvalidInputError(f"plan '{plan.get('title')}' is already {status}")
        stamp = iso_z(self.now)
        updated = {**plan, "status": status, "updatedAt": stamp, "archivedAt": stamp if status == "archived" else None}
        target = self.horizon_target()
        with self.store.write():
            existing = self.store.occurrences(plan_id=plan["id"], include_deleted=True)
            if status == "active":
                changes = reconcile(updated, existing, self.zone.key, self.now, target, self.now)
            else:
                from practiceplan.domain.models import is_touched

                changes = [
                    {**o, "deletedAt": stamp, "updatedAt": stamp}
                    for o in existing
                    if not o.get("deletedAt") and not is_touched(o) and (o.get("scheduledStart") or "") >= stamp
                ]
            self.store.save("practice_plan", updated, stamp)
            self.store.save_many("plan_occurrence", changes, stamp)
            self.store.set_horizon(plan["id"], iso_z(target) if status == "active" else None)
        return updated, len(changes)

    def delete_plan(self, ref: str) -> tuple[dict[str, Any], int]:
        """Soft-delete a plan and all of its occurrences (tombstones sync as deletions)."""
        plan = self.store.resolve("practice_plan", ref)
        stamp = iso_z(self.now)
        with self.store.write():
            occurrences = self.store.occurrences(plan_id=plan["id"])
            gone = [{**o, "deletedAt": stamp, "updatedAt": stamp} for o in occurrences]
            deleted = {**plan, "deletedAt": stamp, "updatedAt": stamp}
            self.store.save("practice_plan", deleted, stamp)
            self.store.save_many("plan_occurrence", gone, stamp)
            self.store.set_horizon(plan["id"], None)
        return deleted, len(gone)

    def plans_by_id(self, include_deleted: bool = False) -> dict[str, dict[str, Any]]:
        return {p["id"]: p for p in self.store.plans(include_deleted=include_deleted)}

    # ------------------------------------------------------------------ occurrences

    def today(self) -> dict[str, Any]:
        from practiceplan.domain.agenda import LOOKBACK, agenda

        self.ensure_horizon()
        plans = [p for p in self.store.plans() if plan_is_live(p)]
        upcoming_days = 62
        occurrences = self.store.occurrences(
            start_from=iso_z(self.now - LOOKBACK), start_before=iso_z(self.now + timedelta(days=upcoming_days))
        )
        seen = {o["id"] for o in occurrences}
        # An `anytime` session stays catchable until its plan's next one starts: include each plan's latest older one.
        for plan in plans:
            older = self.store.occurrences(
                plan_id=plan["id"], start_before=iso_z(self.now - LOOKBACK), newest_first=True, limit=1
            )
            if older and older[0]["id"] not in seen:
                occurrences.append(older[0])
        return agenda(
            plans,
            occurrences,
            now=self.now,
            zone=self.zone,
            week_start=self.settings.week_start,
            upcoming_limit=self.settings.config["upcoming"],
        )

    def checkin(self, ref: str, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        from practiceplan.domain.occurrences import checkin

        occ = self.store.resolve("plan_occurrence", ref)
        plan = self.store.get("practice_plan", occ["planId"], include_deleted=True)
        if plan is None:
            raise NotFoundError(f"the plan of occurrence {occ['id']} is missing")
        with self.store.write():
            occ = self.store.get("plan_occurrence", occ["id"]) or occ
            entry, updated = checkin(
                plan,
                occ,
                now=self.now,
                entry_id=new_id("entry"),
                user_zone=self.zone.key,
                default_instrument=self.settings.config["instrument"],
                **options,
            )
            stamp = iso_z(self.now)
            self.store.save("logbook_entry", entry, stamp)
            self.store.save("plan_occurrence", updated, stamp)
        return entry, updated

    def uncheck(self, ref: str, reason: str | None) -> dict[str, Any]:
        from practiceplan.domain.occurrences import uncheck

        occ = self.store.resolve("plan_occurrence", ref)
        with self.store.write():
            occ = self.store.get("plan_occurrence", occ["id"]) or occ
            updated = uncheck(occ, now=self.now, undo_minutes=self.settings.config["undo_minutes"], reason=reason)
            self.store.save("plan_occurrence", updated, iso_z(self.now))
        return updated

    # ------------------------------------------------------------------ logbook

    def add_entry(self, fields: dict[str, Any]) -> dict[str, Any]:
        entry = normalize_entry({"id": new_id("entry"), **fields}, self.now)
        with self.store.write():
            self.store.save("logbook_entry", entry, iso_z(self.now))
        return entry

    def edit_entry(self, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        entry = self.store.resolve("logbook_entry", ref)
        metadata_changes = changes.pop("metadata", None)
        merged = {**entry, **changes, "updatedAt": iso_z(self.now)}
        if metadata_changes:
            merged["metadata"] = {**(entry.get("metadata") or {}), **metadata_changes}
        merged = normalize_entry(merged, self.now)
        with self.store.write():
            self.store.save("logbook_entry", merged, iso_z(self.now))
        return merged

    def delete_entry(self, ref: str) -> dict[str, Any]:
        entry = self.store.resolve("logbook_entry", ref)
        stamp = iso_z(self.now)
        deleted = {**entry, "deletedAt": stamp, "updatedAt": stamp}
        with self.store.write():
            self.store.save("logbook_entry", deleted, stamp)
        return deleted

    def import_entries(self, path: Path, progress: Any = None) -> tuple[int, int]:
        """Import a JSON array or JSON-lines file of entries: all or nothing. Returns (new, replaced)."""
        from practiceplan.jsonio import read_json_items

        items = read_json_items(path)
        entries = []
        seen: dict[str, int] = {}
        now_iso = iso_z(self.now)
        for index, raw in enumerate(items):
            if isinstance(raw, dict) and "id" not in raw:
                raw = {**raw, "id": content_id(raw)}
            entry = normalize_entry(raw, self.now, where=f"item {index}: ", now_iso=now_iso)
            if entry["id"] in seen:
                raise InvalidInputError(f"item {index}: id: duplicates item {seen[entry['id']]} ('{entry['id']}')")
            seen[entry["id"]] = index
            entries.append(entry)
        stamp = iso_z(self.now)
        with self.store.write():
            existing = self.store.existing_ids("logbook_entry", list(seen))
            from practiceplan import faults

            for start in range(0, len(entries), 5000):
                faults.hit("import.row")
                self.store.save_many("logbook_entry", entries[start : start + 5000], stamp)
                if progress:
                    progress(min(start + 5000, len(entries)), len(entries))
            faults.hit("import.before_commit")
        faults.hit("import.after_commit")
        return len(entries) - len(existing), len(existing)

    def entries_between(self, start: datetime | None, end: datetime | None, limit: int | None) -> list[dict[str, Any]]:
        return self.store.entries(
            from_ms=epoch_ms(start) if start else None, before_ms=epoch_ms(end) if end else None, limit=limit
        )


def content_id(raw: dict[str, Any]) -> str:
    """A deterministic id for an imported entry without one, so importing the same file twice is idempotent."""
    import hashlib

    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return "entry_" + digest[:20]
