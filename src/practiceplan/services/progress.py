"""The progress review as a service: reads the logbook entries with progress records (store/progress.py, an
index seek), turns instants into the user's calendar days, finds each piece's target in the plans, and calls
the pure review in :mod:`practiceplan.domain.progress`. `progress`, the tempo line of `stats` and (later) the
tutor's view use it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from practiceplan.domain import progress as pr
from practiceplan.domain.models import iso_z
from practiceplan.errors import InvalidInputError, NotFoundError
from practiceplan.store import progress as queries

if TYPE_CHECKING:
    from practiceplan.services.session import Session


class Progress:
    def __init__(self, session: Session) -> None:
        self.s = session

    @property
    def today(self) -> date:
        return self.s.now.astimezone(self.s.zone).date()

    def readings(self, plan_id: str | None = None, first: date | None = None) -> list[pr.Reading]:
        """The readings the review needs: every record from the window's first day (or the hotspot window's, if
        earlier) on, and before it only each piece's and passage's latest day of clean and ceiling tempos (the
        only thing the review takes from there: "latest" and "fastest tried")."""
        from practiceplan.domain.occurrences import local_day_start

        today = self.today
        start = min(first or today - timedelta(days=pr.TREND_DAYS - 1), today - timedelta(days=pr.HOTSPOT_DAYS - 1))
        cut = int(local_day_start(start, self.s.zone).timestamp() * 1000)
        conn, zone = self.s.store.conn, self.s.zone
        older = pr.latest_only(queries.progress_rows(conn, plan_id=plan_id, before_ms=cut))
        found = []
        for entry_id, ts, plan, stored in older + queries.progress_rows(conn, plan_id=plan_id, since_ms=cut):
            day = pr.local_day(ts, zone)
            found += [pr.Reading(day, entry_id, plan, record) for record in pr.records(stored)]
        return found

    def _rows(self, readings: list[pr.Reading], first: date | None) -> list[dict[str, Any]]:
        piece_plans: dict[str, list[str]] = {}
        for reading in sorted(readings, key=lambda r: (r.day, r.entry_id)):
            if reading.plan_id:
                piece_plans.setdefault(pr.name_key(reading.record["piece"]), []).append(reading.plan_id)
        plans = {plan["id"]: plan for plan in self.s.store.plans()} if readings else {}
        targets = pr.targets_for(plans, piece_plans)
        return pr.review(readings, today=self.today, first=first, targets=targets)

    # ------------------------------------------------------------------ capture (checkin)

    def names(self, occ: dict[str, Any]) -> list[str]:
        """The names a --tempo/--tension may refer to: the session's segment labels and its plan's pieces."""
        plan = self.s.store.get("practice_plan", occ["planId"], include_deleted=True) or {}
        labels = [s.get("label") for s in occ.get("segments") or [] if isinstance(s, dict)]
        titles = [r.get("title") for r in plan.get("pieceRefs") or [] if isinstance(r, dict)]
        return [name for name in labels + titles if isinstance(name, str) and name.strip()]

    def parse_flags(self, occ: dict[str, Any], tempo: list[str], ceiling: list[str], tension: list[str]
                    ) -> list[dict[str, Any]]:
        """`checkin --tempo/--ceiling/--tension` values -> progress records (a name that differs from one of the
        session's segments or pieces only in case or spacing takes that spelling)."""
        if not (tempo or ceiling or tension):
            return []
        known = self.names(occ)
        return pr.merge_records([pr.parse_tempo(t, "--tempo", known) for t in tempo],
                                [pr.parse_tempo(t, "--ceiling", known) for t in ceiling],
                                [pr.parse_tension(t, known) for t in tension])

    @staticmethod
    def to_ask(occ: dict[str, Any], given: list[dict[str, Any]]) -> list[tuple[str, float]]:
        """(segment label, target BPM) of the session's segments with a tempo target and no clean tempo given."""
        done = {pr.name_key(item["piece"]) for item in given if item["kind"] == "clean"}
        found = []
        for segment in occ.get("segments") or []:
            if isinstance(segment, dict) and isinstance(segment.get("label"), str):
                target = pr.tempo_target(segment)
                if target is not None and pr.name_key(segment["label"]) not in done:
                    found.append((segment["label"], target))
        return found

    @staticmethod
    def answer(kind: str, label: str, reply: str) -> dict[str, Any]:
        """A prompt's reply as a progress record (InvalidInputError when it is not a tempo / a passage)."""
        if kind == "tension":
            return {"kind": "tension", "piece": label, "passage": pr.clean_name(reply, "passage", "--tension")}
        return {"kind": kind, "piece": label, "bpm": pr.check_bpm(reply, "--tempo" if kind == "clean" else "--ceiling")}

    @staticmethod
    def merge(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return pr.merge_records(*groups)

    # ------------------------------------------------------------------ the review

    def report(self, *, piece: str | None = None, plan_id: str | None = None, first: date | None = None
               ) -> dict[str, Any]:
        """The `progress` command: per piece (and passage) clean tempo against target, trend, projection,
        hotspots. ``piece`` keeps the pieces whose name is it, else starts with it, else contains it."""
        today = self.today
        if first is not None and first > today:
            raise InvalidInputError(f"--from {first} is after today ({today})", hint="give a day up to today")
        rows = self._rows(self.readings(plan_id, first), first)
        if piece is not None:
            rows = _matching(rows, piece)
        return {
            "now": iso_z(self.s.now),
            "timezone": self.s.zone.key,
            "today": today.isoformat(),
            "from": (first or today - timedelta(days=pr.TREND_DAYS - 1)).isoformat(),
            "planId": plan_id,
            "hotspotDays": pr.HOTSPOT_DAYS,
            "pieces": rows,
        }

    def summary(self, plan_id: str | None = None) -> list[dict[str, Any]]:
        """One line's worth per piece with a clean tempo (for `stats`): latest, target, percent, trend, projection."""
        return [
            {key: row[key] for key in ("piece", "latest", "target", "percentOfTarget", "trendBpmPerWeek",
                                       "projection")}
            for row in self._rows(self.readings(plan_id), None) if row["latest"] is not None
        ]


def _matching(rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    key = pr.name_key(text)
    for test in (lambda name: name == key, lambda name: name.startswith(key), lambda name: key in name):
        found = [row for row in rows if test(pr.name_key(row["piece"]))]
        if found:
            return found
    known = ", ".join(row["piece"] for row in rows[:8]) or "none yet"
    raise NotFoundError(f"no tempo or tension recorded for a piece named '{text}'",
                        hint=f"pieces with records: {known}")
