"""The body of `stats`, shared by the Typer command and the fast entry path (no Typer here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

def render(view: Any, data: dict[str, Any], svg: Path | None, title: str, lines: Any = None) -> None:
    """Rich on a terminal (or for --svg); otherwise the same words as plain text without loading Rich."""
    from practiceplan.render.output import color_enabled

    if svg is None and lines is not None and not color_enabled():
        from practiceplan.render.plain import print_lines

        print_lines(lines(data))
        return
    from practiceplan.render.output import console

    out = console(record=svg is not None)
    view(data, out)
    if svg is not None:
        from practiceplan.errors import InvalidInputError

        try:
            out.save_svg(str(svg), title=title)
        except OSError as exc:
            raise InvalidInputError(f"cannot write {svg}: {exc.strerror}") from None


def show_stats(p: Any, json_: bool, *, plan: str | None = None, first: str | None = None, last: str | None = None,
               svg: Path | None = None) -> None:
    from practiceplan.services.insights import Insights, parse_range

    start, end = parse_range(p, first, last)
    plan_id = p.store.resolve("practice_plan", plan)["id"] if plan else None
    insights = Insights(p)
    data = insights.stats(plan_id=plan_id, first=start, last=end)
    insights.check_dips()
    if json_:
        from practiceplan.render.output import emit_json

        emit_json(data)
        return
    from practiceplan.render.plain import stats_lines

    render(rich_view("print_stats"), data, svg, "practiceplan stats", stats_lines)


def rich_view(name: str) -> Any:
    def view(data: dict[str, Any], out: Any) -> None:
        from practiceplan.render import insights

        getattr(insights, name)(data, out)

    return view
