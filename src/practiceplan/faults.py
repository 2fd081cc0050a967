"""Named fault points for crash tests (disabled unless ``PRACTICEPLAN_FAULT`` is set).

``PRACTICEPLAN_FAULT=<point>:<n>`` makes the n-th hit of ``point`` kill the process with SIGKILL, as a crash
would: no cleanup, no rollback, no atexit. Used by the kill -9 tests; costs one dict lookup otherwise.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def hit(point: str) -> None:
    spec = os.environ.get("PRACTICEPLAN_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
