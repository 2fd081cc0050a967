"""A reminder process for the concurrency test: runs `practiceplan remind` once per round, in step with the
other workers (a barrier releases all of them at the same "minute"), and reports each exit code."""

from __future__ import annotations

import os
from typing import Any


def run(home: str, rounds: list[str], notify_cmd: str, barrier: Any, codes: Any) -> None:
    os.environ.update({"PRACTICEPLAN_HOME": home, "PRACTICEPLAN_TZ": "Europe/Berlin", "NO_COLOR": "1"})
    os.environ.pop("PRACTICEPLAN_DB", None)
    from practiceplan.cli.app import app

    for now in rounds:
        os.environ["PRACTICEPLAN_NOW"] = now
        barrier.wait(timeout=120)
        try:
            code = app(["remind", "--notify-cmd", notify_cmd], prog_name="practiceplan", standalone_mode=False)
        except SystemExit as exc:  # pragma: no cover - standalone_mode=False returns codes instead
            code = exc.code
        codes.put((now, os.getpid(), code or 0))
        barrier.wait(timeout=120)
