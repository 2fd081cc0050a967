"""The read commands' bodies: parse the option values, call one service, render through one Output.

No Typer here: the Typer commands and the fast entry path (cli/entry.py) call these same functions, so both
print the same bytes. Options arrive as the strings the user typed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from practiceplan.domain.models import SESSION_STATES, STATE_ALIASES
from practiceplan.render.output import Output, color_enabled, console, paged, safe

if TYPE_CHECKING:
    from practiceplan.services.session import Session

# `occurrences --status`: an effective state, or an old stored status (an alias); Typer and the fast path agree.
STATUSES = (*SESSION_STATES, *STATE_ALIASES)


def day(p: Session, text: str | None, flag: str) -> date | None:
    """A user's day (``--from today``, ``--to 2026-03-01``) in their zone, or None when not given."""
    if not text:
        return None
    from practiceplan import dates

    return dates.parse_date(text, p.zone, p.now, flag)


def plan_id(p: Session, ref: str | None) -> str | None:
    return p.store.resolve("practice_plan", ref)["id"] if ref else None


def render(data: dict[str, Any], *, rich: str | Callable[[dict[str, Any], Any], None],
           plain: Callable[[dict[str, Any]], list[str]] | None, svg: Path | None, title: str) -> None:
    """Rich on a terminal (or for --svg, which records it); otherwise the same words as plain text without Rich.
    ``rich``: a function of render/insights.py by name, or the drawing function itself."""
    if svg is None and plain is not None and not color_enabled():
        from practiceplan.render.plain import print_lines

        print_lines(plain(data))
        return
    from practiceplan.render import insights

    out = console(record=svg is not None)
    target = None
    if svg is not None:
        from practiceplan.fileio import output_target

        target = output_target(svg)
        if target.is_stdout:  # stdout carries the SVG alone
            import io

            out.file = io.StringIO()
    (rich if callable(rich) else getattr(insights, rich))(data, out)
    if svg is not None:  # rendered to text, then written by the one writer (never half a file)
        from practiceplan.fileio import write_output

        write_output(svg, out.export_svg(title=title).encode("utf-8"), mode=0o644, replace=True)


def today(p: Session, out: Output) -> None:
    view = p.today.view()
    if out.json:
        out.show(view, lambda: None)
        return
    shown = view["overdue"] + view["dueToday"] + view["upcoming"] + ([view["next"]] if view["next"] else [])
    plans = {rail["plan"]["id"]: rail["plan"] for rail in view["plans"]}
    short = p.store.short_ids("plan_occurrence", [o["id"] for o in shown])

    def human() -> None:
        from practiceplan.render.today import print_today

        print_today(view, plans, short, p.zone)

    def plain() -> None:  # pipes and cron: the same words, no Rich
        from practiceplan.render.plain import print_today

        print_today(view, plans, short, p.zone)

    out.show(view, human, plain)


def next_(p: Session, out: Output) -> None:
    view = p.today.next()
    nxt = view["next"]

    def text() -> None:
        import sys

        if nxt is None:
            sys.stdout.write("Nothing planned.\n")
            return
        from practiceplan.render.plain import local

        plan = p.store.get("practice_plan", nxt["planId"]) or {}
        short = p.store.short_id("plan_occurrence", nxt["id"])
        sys.stdout.write(f"{short}  {local(nxt['scheduledStart'], p.zone, '%a %d %b %H:%M')}  {safe(plan.get('title'))}\n")

    out.show(view, text)


def stats(p: Session, out: Output, *, plan: str | None = None, from_: str | None = None, to: str | None = None,
          svg: Path | None = None, no_pager: bool = False) -> None:
    from practiceplan.render.plain import stats_lines
    from practiceplan.render.sharing import member_stats_lines

    data = p.insights.report(plan_id=plan_id(p, plan), first=day(p, from_, "--from"), last=day(p, to, "--to"))
    with paged(not (no_pager or out.json or svg)):
        out.show(data, lambda: render(data, rich="print_stats", plain=lambda d: [*stats_lines(d), *member_stats_lines(d)],
                                      svg=svg, title="practiceplan stats"))


def progress(p: Session, out: Output, *, piece: str | None = None, plan: str | None = None, from_: str | None = None,
             svg: Path | None = None, no_pager: bool = False) -> None:
    from practiceplan.render import progress as view

    data = p.progress.report(piece=piece, plan_id=plan_id(p, plan), first=day(p, from_, "--from"))
    with paged(not (no_pager or out.json or svg)):
        out.show(data, lambda: render(data, rich=view.print_progress, plain=view.progress_lines, svg=svg,
                                      title="practiceplan progress"))


def forecast(p: Session, out: Output, *, days: int = 7, plan: str | None = None, svg: Path | None = None) -> None:
    from practiceplan.render.plain import forecast_lines

    data = p.insights.forecast(days, plan_id=plan_id(p, plan))
    out.show(data, lambda: render(data, rich="print_forecast", plain=forecast_lines, svg=svg,
                                  title="practiceplan forecast"))


def occurrences(p: Session, out: Output, *, plan: str | None = None, from_: str | None = None, to: str | None = None,
                status: str | None = None, history: str | None = None, no_pager: bool = False) -> None:
    with paged(not (no_pager or out.json)):
        if history is not None:
            show_history(p, out, history)
        else:
            list_occurrences(p, out, plan=plan, from_=from_, to=to, status=status)


def list_occurrences(p: Session, out: Output, *, plan: str | None, from_: str | None, to: str | None,
                     status: str | None) -> None:
    first, last, found, states = p.occurrences.between(day(p, from_, "--from"), day(p, to, "--to"), plan=plan,
                                                       status=status)

    def human() -> None:
        from practiceplan.render.occurrences import print_occurrences

        short = p.store.short_ids("plan_occurrence", [o["id"] for o in found])
        print_occurrences(found, p.plans.by_id(include_deleted=True), short, p.zone, states=states)

    out.show({"from": first.isoformat(), "to": last.isoformat(), "occurrences": found, "states": states}, human)


def show_history(p: Session, out: Output, ref: str) -> None:
    occ, lines = p.schedule.history(ref)

    def human() -> None:
        from practiceplan.render.schedule import print_history

        plan = p.store.get("practice_plan", occ["planId"], include_deleted=True) or {}
        print_history(occ, lines, plan.get("title") or "?", p.store.short_id("plan_occurrence", occ["id"]), p.zone)

    out.show({"occurrence": occ, "history": lines}, human)
