"""Shared set-up of the fault tests: a database with a plan, check-ins, free practice and a published template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def populated(cli, tmp_path) -> dict[str, Any]:
    """A plan with sessions, one check-in, a free entry, a published template and a signing key. Returns ids."""
    plan = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20", "--json").json["plan"]
    occ = cli("occurrences", "--json").json["occurrences"][0]
    cli("checkin", occ["id"], "--minutes", "20")
    cli("log", "add", "--minutes", "30", "--notes", "free practice")
    template = cli("template", "create", "--from-plan", plan["id"], "--title", "Scales", "--json").json["template"]
    cli("template", "publish", template["id"])
    key = cli("template", "keygen", "--json").json
    template_file = tmp_path / "template.json"
    cli("template", "export", template["id"], "-o", str(template_file))
    return {"plan": plan["id"], "occurrence": occ["id"], "template": template["id"],
            "key": key["privateKeyPath"], "templateFile": str(template_file)}


def output_commands(ids: dict[str, Any]) -> dict[str, list[str]]:
    """Every command that writes to a file the user names, as argv prefixes that end before the file name."""
    return {
        "export json": ["export", "json", "-o"],
        "export csv": ["export", "csv", "logbook", "-o"],
        "export ics": ["export", "ics", "-o"],
        "template export": ["template", "export", ids["template"], "-o"],
        "template sign": ["template", "sign", ids["templateFile"], "--key", ids["key"], "-o"],
        "backup": ["backup", "-o"],
        "stats --svg": ["stats", "--svg"],
        "forecast --svg": ["forecast", "--svg"],
    }


def looks_right(name: str, data: bytes) -> bool:
    """The bytes are a whole output of that command (not empty, not a message)."""
    if name == "backup":
        return data.startswith(b"SQLite format 3\x00")
    if name.endswith("--svg"):
        return data.lstrip().startswith(b"<svg") and data.rstrip().endswith(b"</svg>")
    if name == "export ics":
        return data.startswith(b"BEGIN:VCALENDAR") and data.rstrip().endswith(b"END:VCALENDAR")
    if name == "export csv":
        return data.count(b"\r\n") >= 2
    import json

    return isinstance(json.loads(data), dict)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# --------------------------------------------------------------------------- damaged files, made in tmp_path


def checkpoint(db: Path) -> None:
    """Fold the WAL into the main file, so damage written into the file is not healed by a later checkpoint."""
    import sqlite3

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def page_size(db: Path) -> int:
    return int.from_bytes(db.read_bytes()[16:18], "big") or 65536


def damage_mid_file(db: Path) -> None:
    """Random bytes over a b-tree page in the middle of the file (the trial's "damaged database")."""
    import random
    import sqlite3

    checkpoint(db)
    conn = sqlite3.connect(db)
    pages = sorted(r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = 'logbook_entries'")) \
        if _has_dbstat(conn) else []
    count = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    page = pages[len(pages) // 2] if pages else count // 2 + 1
    size = page_size(db)
    noise = random.Random(11).randbytes(size)
    with open(db, "r+b") as handle:
        handle.seek((page - 1) * size)
        handle.write(noise)


def _has_dbstat(conn: Any) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1").fetchall()
        return True
    except Exception:  # noqa: BLE001 - SQLite built without dbstat
        return False


def truncate(db: Path) -> None:
    checkpoint(db)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])


def make_text(db: Path) -> None:
    checkpoint(db)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_text("these are my practice notes, not a database\n" * 200)


def scribble_header(db: Path) -> None:
    checkpoint(db)
    with open(db, "r+b") as handle:
        handle.write(b"scribbled over!!")


DAMAGE = {"mid-file": damage_mid_file, "truncated": truncate, "text": make_text, "header": scribble_header}


def populate_logbook(cli, tmp_path: Path, n: int = 300) -> None:
    """Enough entries that the logbook spans many pages (so damage in the middle of the file hits it)."""
    import json

    lines = [json.dumps({"id": f"entry_bulk{i:05d}", "timestamp": "2026-02-01T10:00:00Z", "duration": 30,
                         "notes": f"bulk note {i} " + "x" * 400}) for i in range(n)]
    path = tmp_path / "bulk.jsonl"
    path.write_text("\n".join(lines) + "\n")
    cli("log", "import", str(path))
