"""Live updates (docs/collaboration.md "Live updates"): events written in the transaction of the change they
describe, delivered by every server process to its own WebSocket connections.

``publish`` is the one way an event is made: one ``live_events`` row per recipient, in the caller's write
transaction (so an event exists exactly when its change committed); on PostgreSQL it also issues
``pg_notify`` (delivered at commit) so every process listening wakes at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from practiceplan.server import db
from practiceplan.server.protocol import iso_ms

CHANNEL = "practiceplan_live"


def publish(conn: Connection, user_ids: Iterable[int], event: dict[str, Any], now: datetime | None = None) -> None:
    """Queue ``event`` (a JSON object with a ``type``) for every device of each user in ``user_ids``; runs
    inside the caller's transaction. ``timestamp`` is added when missing."""
    recipients = sorted(set(user_ids))
    if not recipients:
        return
    stamp = iso_ms(now or datetime.now(UTC))
    body = json.dumps({**event, "timestamp": event.get("timestamp") or stamp}, ensure_ascii=False,
                      separators=(",", ":"))
    conn.execute(db.live_events.insert(), [{"user_id": u, "body": body, "created_at": stamp} for u in recipients])
    if not db.is_sqlite(conn.engine):
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")
