"""Run practiceplan commands on a small file system: a tmpfs mounted in a private mount namespace.

Started by test_small_filesystem.py as ``unshare -m --propagation private python small_fs_driver.py`` with a
JSON job on stdin; the mount exists only inside this process's namespace and disappears with it, so nothing
outside the test's tmp_path is touched. For each command: the free space is cut to ``free`` bytes (a filler
file) or the file system is remounted read-only, the command runs as a user runs it, and the database's
logical content before and after is recorded. Prints one JSON document with the results.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path


def digest(db: Path) -> str:
    """The user's data: every table but the local telemetry (``events``: a read command may record that it was
    viewed before its output fails) and derived caches (``meta`` keys ``cache:*``). Read from a copy of the file
    and its -wal made outside the mount, so that reading creates nothing beside the database."""
    import tempfile

    scratch = Path(tempfile.mkdtemp())
    for suffix in ("", "-wal"):
        if Path(f"{db}{suffix}").exists():
            shutil.copyfile(f"{db}{suffix}", scratch / f"copy.db{suffix}")
    conn = sqlite3.connect(scratch / "copy.db")
    try:
        h = hashlib.sha256()
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'events' "
                                     "ORDER BY name"):
            where = " WHERE key NOT LIKE 'cache:%'" if table == "meta" else ""
            rows = conn.execute(f'SELECT * FROM "{table}"{where} ORDER BY 1').fetchall()
            h.update(json.dumps([table, rows]).encode())
        return h.hexdigest()
    finally:
        conn.close()
        shutil.rmtree(scratch)


def fill(mount: Path, free: int) -> None:
    filler = mount / "filler"
    filler.unlink(missing_ok=True)
    info = os.statvfs(mount)
    size = info.f_bavail * info.f_frsize - free
    if size > 0:
        with open(filler, "wb") as handle:
            try:
                handle.write(b"\0" * size)
            except OSError:
                pass


def run(job: dict) -> dict:
    mount = Path(job["mount"])
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={job['size']}", "tmpfs", str(mount)], check=True)
    home = mount / "home"
    shutil.copytree(job["seed"], home)
    db = home / "practiceplan.db"
    env = {**os.environ, **job["env"], "PRACTICEPLAN_HOME": str(home)}
    results = []
    for argv in job["commands"]:
        (mount / "filler").unlink(missing_ok=True)
        if job.get("readonly"):
            subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
        before = digest(db)
        if job.get("readonly"):
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        else:
            fill(mount, job["free"])
        proc = subprocess.run([sys.executable, "-m", "practiceplan", *argv], env=env, capture_output=True,
                              timeout=120, check=False)
        if job.get("readonly"):
            subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
        (mount / "filler").unlink(missing_ok=True)
        leftovers = sorted(str(p.relative_to(mount)) for p in mount.rglob("*") if ".tmp" in p.name)
        results.append({"argv": argv, "code": proc.returncode, "stderr": proc.stderr.decode(errors="replace"),
                        "stdout": proc.stdout.decode(errors="replace") if job.get("capture") else "",
                        "before": before, "after": digest(db), "leftovers": leftovers})
    return {"results": results}


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))))
