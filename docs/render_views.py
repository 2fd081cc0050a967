"""Render the README/docs pictures of `stats` and `forecast` from the demo data.

    python docs/render_views.py [OUTDIR]        (default: docs/img)

The clock is fixed (PRACTICEPLAN_NOW) and the demo is seeded, so the pictures only change when the views
do; tests/cli/test_docs_views.py fails when the committed pictures are stale.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

NOW = "2026-03-19T17:30:00Z"
ZONE = "Europe/Berlin"


def render(outdir: Path) -> list[Path]:
    os.environ["PRACTICEPLAN_NOW"] = NOW
    os.environ["PRACTICEPLAN_TZ"] = ZONE
    os.environ.pop("NO_COLOR", None)
    from rich.console import Console

    from practiceplan.services.demo import build_demo
    from practiceplan.services.insights import Insights
    from practiceplan.render.insights import print_forecast, print_stats

    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        planner = build_demo(Path(home) / "demo")
        insights = Insights(planner)
        written = []
        for name, view, data in (
            ("stats", print_stats, insights.stats()),
            ("forecast", print_forecast, insights.forecast(14)),
        ):
            console = Console(record=True, width=100, file=io.StringIO(), force_terminal=True,
                              color_system="truecolor", highlight=False, markup=False, emoji=False)
            view(data, console)
            path = outdir / f"{name}.svg"
            console.save_svg(str(path), title=f"practiceplan {name}")
            written.append(path)
        planner.close()
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "img"
    for path in render(target):
        print(path)
