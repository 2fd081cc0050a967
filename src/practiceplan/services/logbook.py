"""The logbook: log practice, edit, delete, import, list."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from practiceplan.domain.models import (
    check_minutes,
    check_not_future,
    epoch_ms,
    iso_z,
    new_id,
    normalize_entry,
    parse_instant,
)
from practiceplan.errors import InvalidInputError

if TYPE_CHECKING:
    from practiceplan.services.session import Session


class Logbook:
    def __init__(self, session: Session) -> None:
        self.s = session

    def log_free(self, fields: dict[str, Any]) -> dict[str, Any]:
        """`log add`: free practice, now unless ``timestamp`` is given, on the configured instrument unless given."""
        s = self.s
        defaults = {"timestamp": iso_z(s.now), "instrument": s.settings.config["instrument"]}
        return self.add({**defaults, **fields, "metadata": {"source": "manual", "timezone": s.zone.key}})

    def add(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Log practice (free, or as given by a check-in): 1..1440 minutes, not in the future (models.check_*)."""
        s = self.s
        _check_limits(fields, s.now)
        entry = normalize_entry({"id": new_id("entry"), **fields}, s.now)
        with s.store.write():
            s.store.save("logbook_entry", entry, iso_z(s.now))
        return entry

    def edit(self, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change the given fields of an entry (metadata keys are merged)."""
        s = self.s
        _check_limits(changes, s.now)
        entry = s.store.resolve("logbook_entry", ref)
        metadata_changes = changes.pop("metadata", None)
        merged = {**entry, **changes, "updatedAt": iso_z(s.now)}
        if metadata_changes:
            merged["metadata"] = {**(entry.get("metadata") or {}), **metadata_changes}
        merged = normalize_entry(merged, s.now)
        with s.store.write():
            s.store.save("logbook_entry", merged, iso_z(s.now))
        return merged

    def delete(self, ref: str) -> dict[str, Any]:
        """Soft-delete an entry (synced as a deletion)."""
        s = self.s
        entry = s.store.resolve("logbook_entry", ref)
        stamp = iso_z(s.now)
        deleted = {**entry, "deletedAt": stamp, "updatedAt": stamp}
        with s.store.write():
            s.store.save("logbook_entry", deleted, stamp)
        return deleted

    def import_file(self, path: Path, progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
        """Import a JSON array or JSON-lines file of entries: all or nothing. Returns (new, replaced)."""
        s = self.s
        from practiceplan.formats.jsonfile import read_json_items

        items = read_json_items(path)
        entries = []
        seen: dict[str, int] = {}
        now_iso = iso_z(s.now)
        for index, raw in enumerate(items):
            if isinstance(raw, dict) and "id" not in raw:
                raw = {**raw, "id": content_id(raw)}
            entry = normalize_entry(raw, s.now, where=f"item {index}: ", now_iso=now_iso)
            if entry["id"] in seen:
                raise InvalidInputError(f"item {index}: id: duplicates item {seen[entry['id']]} ('{entry['id']}')")
            seen[entry["id"]] = index
            entries.append(entry)
        stamp = iso_z(s.now)
        with s.store.write():
            existing = s.store.existing_ids("logbook_entry", list(seen))
            from practiceplan import faults

            for start in range(0, len(entries), 5000):
                faults.hit("import.row")
                s.store.save_many("logbook_entry", entries[start : start + 5000], stamp)
                if progress:
                    progress(min(start + 5000, len(entries)), len(entries))
            faults.hit("import.before_commit")
        faults.hit("import.after_commit")
        return len(entries) - len(existing), len(existing)

    def listing(self, first: date | None, last: date | None, limit: int | None) -> list[dict[str, Any]]:
        """Entries on the user's local days ``first``..``last`` (either end open), newest first."""
        return self.between(*self.span(first, last), limit)

    def count(self, first: date | None, last: date | None) -> int:
        """How many entries lie on the user's local days ``first``..``last`` (either end open)."""
        start, end = self.span(first, last)
        return self.s.store.count_entries(from_ms=epoch_ms(start) if start else None,
                                          before_ms=epoch_ms(end) if end else None)

    def span(self, first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
        """The instants the user's local days ``first``..``last`` begin and end (None for an open end)."""
        from practiceplan.domain.occurrences import local_day_start

        zone = self.s.zone
        return (local_day_start(first, zone) if first else None,
                local_day_start(last + timedelta(days=1), zone) if last else None)

    def between(self, start: datetime | None, end: datetime | None, limit: int | None) -> list[dict[str, Any]]:
        """Entries from ``start`` (inclusive) to ``end`` (exclusive), newest first."""
        return self.s.store.entries(
            from_ms=epoch_ms(start) if start else None, before_ms=epoch_ms(end) if end else None, limit=limit
        )


def _check_limits(fields: dict[str, Any], now: datetime) -> None:
    """The one rule for what a person logs: minutes 1..1440, a time not (much) in the future."""
    if "duration" in fields:
        check_minutes(fields["duration"])
    stamp = parse_instant(fields.get("timestamp"))
    if stamp is not None:
        check_not_future(stamp, now)


def content_id(raw: dict[str, Any]) -> str:
    """A deterministic id for an imported entry without one, so importing the same file twice is idempotent."""
    import hashlib

    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return "entry_" + digest[:20]
