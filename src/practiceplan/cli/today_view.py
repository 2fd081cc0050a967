"""The bodies of `today` and `next`, shared by the Typer commands and the fast entry path (no Typer here)."""

from __future__ import annotations

import sys
from typing import Any


def show_today(p: Any, json_: bool) -> None:
    view = p.today.view()
    if json_:
        from practiceplan.render.output import emit_json

        emit_json(view)
        return
    from practiceplan.render.output import color_enabled

    if color_enabled():
        from practiceplan.render.views import print_today
    else:  # plain text for pipes and cron: the same words, no Rich
        from practiceplan.render.plain import print_today
    shown = view["overdue"] + view["dueToday"] + view["upcoming"] + ([view["next"]] if view["next"] else [])
    plans = {rail["plan"]["id"]: rail["plan"] for rail in view["plans"]}
    print_today(view, plans, p.store.short_ids("plan_occurrence", [o["id"] for o in shown]), p.zone)


def show_next(p: Any, json_: bool) -> None:
    view = p.today.next()
    nxt = view["next"]
    if json_:
        from practiceplan.render.output import emit_json

        emit_json(view)
        return
    if nxt is None:
        sys.stdout.write("Nothing planned.\n")
        return
    from practiceplan.render.output import safe
    from practiceplan.render.plain import local

    plan = p.store.get("practice_plan", nxt["planId"]) or {}
    short = p.store.short_id("plan_occurrence", nxt["id"])
    sys.stdout.write(f"{short}  {local(nxt['scheduledStart'], p.zone, '%a %d %b %H:%M')}  {safe(plan.get('title'))}\n")
