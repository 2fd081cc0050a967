"""The daily view: what is overdue, due today and coming up, how each plan is going, and what to do next."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from practiceplan.domain.models import iso_z, plan_is_live

if TYPE_CHECKING:
    from practiceplan.services.session import Session


class Today:
    def __init__(self, session: Session) -> None:
        self.s = session

    def agenda(self) -> dict[str, Any]:
        """Overdue, due today, upcoming, the weekly rails per plan and the next session."""
        from practiceplan.domain.today import LOOKBACK, agenda

        s = self.s
        s.plans.extend_horizon()
        plans = [p for p in s.store.plans() if plan_is_live(p)]
        upcoming_days = 62
        occurrences = s.store.occurrences(
            start_from=iso_z(s.now - LOOKBACK), start_before=iso_z(s.now + timedelta(days=upcoming_days))
        )
        seen = {o["id"] for o in occurrences}
        # An `anytime` session stays catchable until its plan's next one starts: include each plan's latest older one.
        for plan in plans:
            older = s.store.occurrences(
                plan_id=plan["id"], start_before=iso_z(s.now - LOOKBACK), newest_first=True, limit=1
            )
            if older and older[0]["id"] not in seen:
                occurrences.append(older[0])
        return agenda(
            plans,
            occurrences,
            now=s.now,
            zone=s.zone,
            week_start=s.settings.week_start,
            upcoming_limit=s.settings.config["upcoming"],
            me=s.me,
        )

    def view(self) -> dict[str, Any]:
        """The `today` screen: the agenda, the one-line summary, and the top suggestion.

        Adherence dips noticed here are recorded (and the dip hook run) only once per plan and week.
        """
        from practiceplan.services.insights import for_today

        view = self.agenda()
        insights = for_today(self.s)
        view["summary"] = insights.summary()
        insights.check_dips()
        view["suggestion"] = self.s.schedule.top_suggestion(near=insights)
        return view

    def next(self) -> dict[str, Any]:
        """Only the next actionable session (overdue first, then due today, then upcoming)."""
        view = self.agenda()
        return {"now": view["now"], "timezone": view["timezone"], "next": view["next"]}
