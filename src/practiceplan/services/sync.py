"""Sync with a remote server (Mirubato or `practiceplan serve`): run a sync, show its status, list and resolve
conflicts. The algorithm is in sync/engine.py, the wire format in sync/wire.py, HTTP in sync/client.py."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from practiceplan.domain.models import iso_z
from practiceplan.errors import InvalidInputError, NotFoundError, UsageError
from practiceplan.store import sync as st

if TYPE_CHECKING:
    from practiceplan.services.session import Session
    from practiceplan.sync.engine import Summary

KEEP = ("local", "remote")
DEFAULT_TIMEOUT = 30.0


def retry_delays(env: dict[str, str]) -> tuple[float, ...]:
    """Waits between retries of one request (``PRACTICEPLAN_SYNC_BACKOFF`` scales them; 0 in tests)."""
    try:
        scale = float(env.get("PRACTICEPLAN_SYNC_BACKOFF", "1"))
    except ValueError:
        scale = 1.0
    return tuple(d * max(scale, 0.0) for d in (0.5, 1.0, 2.0))


class Sync:
    def __init__(self, session: Session) -> None:
        self.s = session

    # ------------------------------------------------------------------ configuration

    def remote(self) -> str:
        return self.s.remote.require_url()

    # ------------------------------------------------------------------ sync

    def run(self, *, dry_run: bool = False, progress: Callable[[str, int, int], None] | None = None,
            client: Any = None) -> Summary:
        from practiceplan.sync.engine import Engine

        url = self.remote()
        own = client is None
        client = client or self.s.remote.client(timeout=_timeout(self.s.settings.env))

        def record(summary: Summary) -> None:  # runs inside the sync's last transaction
            self.s.add_event("sync", {"received": summary.received, "merged": summary.merged, "sent": summary.sent,
                                      "conflicts": len(summary.conflicts)})

        lock = st.sync_lock(self.s.settings.db_path) if not dry_run else contextlib.nullcontext()
        try:
            with lock:
                engine = Engine(self.s.store, client, now=lambda: iso_z(self.s.now), remote=url, dry_run=dry_run,
                                retry_delays=retry_delays(self.s.settings.env), record=record,
                                **({"progress": progress} if progress else {}))
                summary = engine.run()
        finally:
            if own:
                client.close()
        return summary

    # ------------------------------------------------------------------ status and conflicts

    def status(self) -> dict[str, Any]:
        conn = self.s.store.conn
        pending = st.outbox_count(conn)
        caps = st.get_json(conn, "capabilities") or {}
        batch = st.pending_batch(conn)
        return {
            "remote": st.get_meta(conn, "remote"),
            "device_id": st.get_meta(conn, "device_id"),
            "pending": {"total": sum(pending.values()), **{k: pending.get(k, 0) for k in
                                                           ("practice_plan", "plan_occurrence", "logbook_entry",
                                                            "plan_template")}},
            "unsent_batch": {"items": len(batch["items"]), "attempts": batch["attempts"]} if batch else None,
            "last_sync": st.get_json(conn, "last_sync"),
            "capabilities": caps.get("list") if caps else None,
            "conflicts": st.open_conflict_count(conn),
        }

    def conflicts(self, *, include_resolved: bool = False) -> list[dict[str, Any]]:
        return st.conflicts(self.s.store.conn, include_resolved=include_resolved)

    def resolve(self, conflict_id: str, keep: str) -> dict[str, Any]:
        """Settle a conflict: ``local`` brings back (and queues for the next sync) the version this device had,
        ``remote`` keeps the server's. Either way the chosen version gets a fresh ``updatedAt`` when it must be
        pushed, so it wins on every device."""
        if keep not in KEEP:
            raise UsageError(f"--keep must be local or remote, not '{keep}'", hint="e.g. --keep local")
        try:
            number = int(conflict_id.lstrip("#"))
        except ValueError:
            raise UsageError(f"conflict ids are numbers, not '{conflict_id}'",
                             hint="list them with `practiceplan sync conflicts`") from None
        store = self.s.store
        found = st.conflict(store.conn, number)
        if found is None:
            raise NotFoundError(f"no sync conflict #{number}", hint="list them with `practiceplan sync conflicts`")
        if found["resolved_at"]:
            raise InvalidInputError(f"sync conflict #{number} was already resolved ({found['resolution']})",
                                    hint="list open ones with `practiceplan sync conflicts`")
        chosen = found["local"] if keep == "local" else found["remote"]
        kind, now = found["kind"], iso_z(self.s.now)
        with store.write():
            current = st.docs(store.conn, kind, [found["entity_id"]]).get(found["entity_id"])
            write = None
            if keep == found["kept"]:
                write = None  # already in place
            elif chosen is not None and chosen.get("deletedAt"):
                if current is not None and not current.get("deletedAt"):
                    write = {**current, "deletedAt": now, "updatedAt": now}  # the kept version is a deletion
            elif chosen is not None:
                write = {**chosen, "updatedAt": now}
                write.pop("deletedAt", None)
            elif keep == "remote" and found["kept"] == "local" and found["remote"] is None:
                if current is not None and not current.get("deletedAt"):
                    raise InvalidInputError(
                        f"the server has no version of {found['entity_id']} to keep (it refused this device's)",
                        hint="fix it and sync again, or delete it here")
            if write is not None:
                store.save(kind, write, now)
                if kind == "practice_plan":
                    st.clear_horizons(store.conn, [found["entity_id"]])  # its sessions come back with it
            st.resolve_conflict(store.conn, number, f"kept {keep}", now)
        return {"id": number, "kind": kind, "entity_id": found["entity_id"], "kept": keep,
                "changed": write is not None}


def _timeout(env: dict[str, str]) -> float:
    try:
        value = float(env.get("PRACTICEPLAN_SYNC_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT

