"""Worker processes for the store concurrency tests (run as a script, not collected by pytest).

Usage::

    python tests/store/workers.py checkin IDS_FILE RESULT_FILE
    python tests/store/workers.py log COUNT RESULT_FILE

Settings come from the environment (PRACTICEPLAN_HOME, PRACTICEPLAN_NOW, PRACTICEPLAN_TZ). Each worker opens
one Session (one connection), prints ``ready`` once it has opened the database, waits for a line on stdin
(so both workers start their loops at the same moment), then runs its loop: one Session call, and so one
``BEGIN IMMEDIATE`` transaction, per item. Every exception is recorded (never re-raised) and the loop goes
on. The result file gets JSON: created ids, every error, start/end times, and the longest single call
(SQLite's busy handler is not fair: a waiting writer can sleep through many of the other's transactions). Exit status 0 when there were no
errors, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path


def _error(index: int, exc: BaseException) -> dict[str, object]:
    return {
        "index": index,
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc))[-2000:],
    }


def main(argv: list[str]) -> int:
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    mode = argv[0]
    result_file = Path(argv[2])
    planner = Session(Settings(env=dict(os.environ)))
    planner.store  # open (and if needed migrate) before the start signal  # noqa: B018
    items: list[str] | int
    if mode == "checkin":
        items = json.loads(Path(argv[1]).read_text())
    elif mode == "log":
        items = int(argv[1])
    else:
        raise SystemExit(f"unknown mode {mode!r}")

    print("ready", flush=True)
    sys.stdin.readline()  # the start signal

    created: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    latencies: list[float] = []
    started = time.time()
    if mode == "checkin":
        assert isinstance(items, list)
        for index, occ_id in enumerate(items):
            begun = time.perf_counter()
            try:
                entry, occ = planner.occurrences.checkin(occ_id, minutes=10 + index % 50)
                created.append({"entry": entry["id"], "occurrence": occ["id"], "minutes": entry["duration"]})
            except BaseException as exc:  # noqa: BLE001 - record everything
                errors.append(_error(index, exc))
            latencies.append(time.perf_counter() - begun)
    else:
        assert isinstance(items, int)
        for index in range(items):
            begun = time.perf_counter()
            try:
                entry = planner.logbook.add(
                    {
                        "duration": 1 + index % 90,
                        "timestamp": "2026-03-01T18:00:00.000Z",
                        "instrument": "piano",
                        "notes": f"manual {index}",
                        "metadata": {"source": "manual", "timezone": planner.zone.key},
                    }
                )
                created.append({"entry": entry["id"], "minutes": entry["duration"], "index": index})
            except BaseException as exc:  # noqa: BLE001
                errors.append(_error(index, exc))
            latencies.append(time.perf_counter() - begun)
    finished = time.time()
    planner.close()
    result_file.write_text(
        json.dumps({
            "created": created,
            "errors": errors,
            "started": started,
            "finished": finished,
            "max_latency": max(latencies, default=0.0),
            "slow": sum(1 for x in latencies if x > 1.0),
        })
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
