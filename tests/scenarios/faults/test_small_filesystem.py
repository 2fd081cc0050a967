"""Issue 11.1-2, 11.4 and 10.6 on a real file system: a tmpfs with almost no free space, and one mounted
read-only. Runs where the machine allows a private mount namespace (``unshare -m``, as root or with user
namespaces); skipped with the reason otherwise. The mount lives only inside the driver process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store.helpers import env_for
from tests.scenarios.faults.conftest import checkpoint, populate_logbook

DRIVER = Path(__file__).with_name("small_fs_driver.py")
UNSHARE = ["unshare", "-m", "--propagation", "private"]


def _mount_allowed(tmp_path: Path) -> str | None:
    """None when a tmpfs can be mounted in a private namespace here, else why not."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return "needs Linux and unshare(1)"
    probe = tmp_path / "probe"
    probe.mkdir()
    proc = subprocess.run([*UNSHARE, "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe} && umount {probe}"],
                          capture_output=True, timeout=30, check=False)
    if proc.returncode != 0:
        return f"cannot mount a tmpfs in a private mount namespace: {proc.stderr.decode().strip()[:120]}"
    return None


@pytest.fixture
def seed(cli, isolated_home, tmp_path) -> Path:
    reason = _mount_allowed(tmp_path)
    if reason:
        pytest.skip(f"no small file system here ({reason}); the monkeypatched full-disk tests still run")
    cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20")
    populate_logbook(cli, tmp_path, 200)
    cli("backup")
    cli("template", "keygen")
    checkpoint(isolated_home / "practiceplan.db")
    return isolated_home


def _drive(tmp_path: Path, seed: Path, commands: list[list[str]], **job) -> list[dict]:
    spec = {"mount": str(tmp_path / "mnt"), "seed": str(seed), "size": "4m", "commands": commands,
            "env": {k: v for k, v in env_for(seed).items() if k != "PRACTICEPLAN_HOME"}, **job}
    proc = subprocess.run([*UNSHARE, sys.executable, str(DRIVER)], input=json.dumps(spec).encode(),
                          capture_output=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout)["results"]


def _writers(tmp_path: Path, seed: Path) -> list[list[str]]:
    export = tmp_path / "export.json"
    doc = {"format": "practiceplan.export", "formatVersion": 1, "entries": [
        {"id": f"entry_fs{i:04d}", "timestamp": "2026-02-05T10:00:00Z", "duration": 20, "notes": "n" * 300}
        for i in range(300)]}
    export.write_text(json.dumps(doc))
    backup = next((seed / "backups").glob("*.db"))
    mnt = tmp_path / "mnt"
    return [
        ["log", "add", "--minutes", "5"],
        ["plan", "add", "Arpeggios", "--every", "daily", "--at", "07:00"],
        ["import", "json", str(export)],
        ["backup"],
        ["backup", "-o", str(mnt / "copy.db")],
        ["export", "json", "-o", str(mnt / "out.json")],
        ["stats", "--svg", str(mnt / "stats.svg")],
        ["config", "set", "daily_capacity", "90"],
        ["template", "keygen", "--name", "other"],
        ["restore", backup.name],
        ["today"],
    ]


@pytest.mark.parametrize("free", [0, 16_384, 120_000])
def test_a_nearly_full_disk_is_said_and_changes_nothing(seed, tmp_path, free):
    for result in _drive(tmp_path, seed, _writers(tmp_path, seed), free=free):
        where = f"{result['argv']} with {free} bytes free: {result['stderr']}"
        assert result["code"] in (0, 75), where
        assert "internal error" not in result["stderr"] and "Traceback" not in result["stderr"], where
        if result["code"] == 75:
            assert "the disk is full" in result["stderr"], where
            assert result["after"] == result["before"], where
        assert result["leftovers"] == [], where


def test_a_read_only_mount_reads_and_refuses_writes(seed, tmp_path):
    outside = tmp_path / "copy.db"
    commands = [["today"], ["plan", "list"], ["stats"], ["forecast"], ["log", "list"], ["export", "json"],
                ["doctor"], ["backup", "-o", str(outside)], ["log", "add", "--minutes", "5"],
                ["plan", "add", "X", "--every", "daily"]]
    results = _drive(tmp_path, seed, commands, readonly=True)
    for result in results:
        where = f"{result['argv']}: {result['stderr']}"
        writes = result["argv"][:2] in (["log", "add"], ["plan", "add"])
        assert result["code"] == (77 if writes else 0), where
        assert result["after"] == result["before"], where
        if writes:
            assert "read-only" in result["stderr"] and "hint:" in result["stderr"], where
    assert outside.exists() and outside.with_suffix(".json").exists()


def _pending_wal(seed: Path) -> None:
    """Leave a committed change in the -wal (not yet folded into the file), as an open writer does."""
    import shutil as sh
    import sqlite3

    work = seed.parent / "work"
    sh.copytree(seed, work)
    conn = sqlite3.connect(work / "practiceplan.db", isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("UPDATE practice_plans SET doc = json_set(doc, '$.title', 'From the WAL')")
    sh.rmtree(seed)
    sh.copytree(work, seed)  # copied while the writer still has it open: -wal and -shm included
    conn.close()
    sh.rmtree(work)


def test_a_read_only_mount_with_a_pending_wal_is_read_whole(seed, tmp_path):
    _pending_wal(seed)
    assert (seed / "practiceplan.db-shm").exists() and (seed / "practiceplan.db-wal").stat().st_size > 0
    results = _drive(tmp_path, seed, [["plan", "list", "--json"]], readonly=True, capture=True)
    assert results[0]["code"] == 0, results[0]["stderr"]
    assert "From the WAL" in results[0]["stdout"]


def test_a_read_only_mount_with_a_pending_wal_and_no_shm_says_why(seed, tmp_path):
    _pending_wal(seed)
    (seed / "practiceplan.db-shm").unlink()
    result = _drive(tmp_path, seed, [["plan", "list"]], readonly=True)[0]
    assert result["code"] == 77 and "write-ahead log" in result["stderr"] and "hint:" in result["stderr"], result
