"""SQL for reminders: which occurrences were reminded on which channel, and each channel's last run.

``reminders_sent`` has ``UNIQUE (occurrence_id, channel)``: the row is inserted in the same ``BEGIN IMMEDIATE``
transaction that decides to notify, so however many reminder processes run at once, one of them wins each
(occurrence, channel) and the others see it as sent. Writers must run inside ``Store.write()``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def sent(conn: sqlite3.Connection, channel: str, occurrence_ids: Iterable[str]) -> set[str]:
    """The ids among ``occurrence_ids`` already reminded on ``channel`` (any kind)."""
    ids = list(dict.fromkeys(occurrence_ids))
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(
            row[0]
            for row in conn.execute(
                f"SELECT occurrence_id FROM reminders_sent WHERE channel = ? AND occurrence_id IN "
                f"({', '.join('?' * len(chunk))})",
                [channel, *chunk],
            )
        )
    return found


def record(conn: sqlite3.Connection, channel: str, kind: str, occurrence_ids: Iterable[str], at: str) -> list[str]:
    """Insert one row per id; returns the ids this call inserted (the others were already there)."""
    assert conn.in_transaction, "reminders are recorded inside Store.write()"
    inserted = []
    for occ_id in occurrence_ids:
        cursor = conn.execute(
            "INSERT INTO reminders_sent (occurrence_id, channel, kind, sent_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (occ_id, channel, kind, at),
        )
        if cursor.rowcount == 1:
            inserted.append(occ_id)
    return inserted


def forget(conn: sqlite3.Connection, channel: str, occurrence_ids: Iterable[str]) -> int:
    """Remove records (a notification command failed: the next run tries again)."""
    assert conn.in_transaction
    count = 0
    for occ_id in occurrence_ids:
        count += conn.execute(
            "DELETE FROM reminders_sent WHERE channel = ? AND occurrence_id = ?", (channel, occ_id)
        ).rowcount
    return count


def last_run(conn: sqlite3.Connection, channel: str) -> str | None:
    row = conn.execute("SELECT last_run FROM reminder_cursor WHERE channel = ?", (channel,)).fetchone()
    return row[0] if row else None


def set_last_run(conn: sqlite3.Connection, channel: str, at: str) -> None:
    """Move the cursor forward (never back: a clock that jumps back does not rewind it)."""
    assert conn.in_transaction
    conn.execute(
        "INSERT INTO reminder_cursor (channel, last_run) VALUES (?, ?) "
        "ON CONFLICT(channel) DO UPDATE SET last_run = max(last_run, excluded.last_run)",
        (channel, at),
    )
