"""How long a connection waits for another process's write lock, and how "it is locked" is recognised.

Shared by the connection code (store/db.py) and the backup code (store/backup.py), which db.py also uses
(the automatic backup before a migration), so it lives apart from both.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from practiceplan.errors import BusyError

BUSY_TIMEOUT_MS = 5000


def is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def busy_error(path: Path | str) -> BusyError:
    return BusyError(
        f"the database {path} is busy: another practiceplan process holds it",
        hint="try again in a moment",
    )
