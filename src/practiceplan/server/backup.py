"""``practiceplan server backup``: an online copy of a SQLite server database (SQLite's backup API, consistent
while the server runs); for PostgreSQL the ``pg_dump`` command that does the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from practiceplan.server import db


def backup(database: str, target: Path) -> dict[str, object]:
    url = db.database_url(database)
    if not url.startswith("sqlite"):
        parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
        safe = parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else ""))
        user = f"--username={parts.username} " if parts.username else ""
        command = f"pg_dump --format=custom {user}--file={target} '{safe.geturl()}'"
        return {"backend": "postgresql", "command": command, "written": False}
    source_path = Path(url.removeprefix("sqlite:///"))
    if not source_path.exists():
        raise FileNotFoundError(str(source_path))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=db.BUSY_TIMEOUT_MS / 1000)
    try:
        dest = sqlite3.connect(partial)
        try:
            source.backup(dest)
            dest.execute("PRAGMA journal_mode = DELETE")
            check = dest.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dest.close()
    finally:
        source.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise RuntimeError("the copy failed its integrity check")
    partial.replace(target)
    return {"backend": "sqlite", "file": str(target), "bytes": target.stat().st_size, "written": True}
