"""`doctor`: what it checks, what it reports, and what `--fix` repairs (only what is safe)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from practiceplan.services import data
from practiceplan.store import schema
from tests.store.helpers import FIXTURES, copy_fixture
from tests.services.test_data_export_import import _planner


def _checks(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def _doctor(cli, *args: str, code: int = 0) -> dict:
    result = cli("doctor", "--json", *args, ok=False)
    assert result.code == code, result
    return json.loads(result.stdout)


def _with_plan(cli) -> dict:
    plan = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--json").json["plan"]
    occ = cli("occurrences", "--plan", plan["id"], "--json").json["occurrences"][0]
    cli("checkin", occ["id"], "--minutes", "20")
    return plan


def test_healthy_database(cli, isolated_home):
    _with_plan(cli)
    cli("backup")
    report = _doctor(cli)
    assert report["ok"] is True and report["errors"] == 0 and report["warnings"] == 0
    assert report["schemaVersion"] == report["headVersion"] == schema.SCHEMA_VERSION
    checks = _checks(report)
    for name in ("database", "integrity", "foreignKeys", "schema", "links", "horizon", "wal", "permissions",
                 "credentials", "filesystem", "backups"):
        assert checks[name]["status"] in ("ok", "info"), (name, checks[name])
    assert checks["credentials"]["message"].endswith("credentials.json: not present")
    assert checks["outbox"]["status"] == "info" and "not yet synced" in checks["outbox"]["message"]
    text = cli("doctor").stdout
    assert "ok     integrity      integrity_check: ok" in text


def test_no_database_yet(cli, isolated_home):
    report = _doctor(cli)
    assert report["ok"] is True and _checks(report)["database"]["status"] == "info"
    assert not (isolated_home / "practiceplan.db").exists()  # doctor does not create it


def test_corrupt_database_is_an_error_with_the_restore_command(cli, isolated_home):
    _with_plan(cli)
    backup = cli("backup", "--json").json["path"]
    live = isolated_home / "practiceplan.db"
    conn = sqlite3.connect(live)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'plan_occurrences_start'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    raw = bytearray(live.read_bytes())
    for offset in range((root - 1) * page + 8, (root - 1) * page + 60):
        raw[offset] = 0x7F
    live.write_bytes(bytes(raw))
    report = _doctor(cli, code=65)
    check = _checks(report)["integrity"]
    assert check["status"] == "error" and check["fix"] == f"practiceplan restore {backup}"
    result = cli("doctor", ok=False)
    assert result.code == 65 and "ERROR  integrity" in result.stdout
    assert result.stderr.startswith("practiceplan: error: doctor found 1 problem ")


def test_orphaned_links_are_reported_not_fixed(cli, isolated_home):
    _with_plan(cli)
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    conn.execute("DELETE FROM logbook_entries")  # the linked entry vanishes (e.g. a bad sync)
    conn.commit()
    report = _doctor(cli, "--fix")
    check = _checks(report)["links"]
    assert check["status"] == "warning" and not check["fixed"]
    assert check["message"] == "1 occurrences linked to a logbook entry that is missing"
    holder, missing = check["details"]["occurrenceEntry"][0]
    assert conn.execute("SELECT log_entry_id FROM plan_occurrences WHERE id = ?", (holder,)).fetchone()[0] == missing
    conn.close()
    assert report["ok"] is True  # a warning, not an error


def test_horizon_behind_is_fixed_by_materialising(cli, isolated_home):
    plan = _with_plan(cli)
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    conn.execute("UPDATE practice_plans SET horizon = '2026-03-05T00:00:00.000Z'")
    conn.execute("DELETE FROM plan_occurrences WHERE scheduled_start > '2026-03-05' AND status = 'scheduled'")
    conn.commit()
    before = conn.execute("SELECT count(*) FROM plan_occurrences").fetchone()[0]
    assert _checks(_doctor(cli))["horizon"]["status"] == "warning"
    fixed = _checks(_doctor(cli, "--fix"))["horizon"]
    assert fixed["fixed"] and "sessions written" in fixed["message"]
    assert conn.execute("SELECT count(*) FROM plan_occurrences").fetchone()[0] > before + 80
    conn.close()
    assert _checks(_doctor(cli))["horizon"]["status"] == "ok"
    assert plan["id"]


def test_sessions_beyond_the_horizon_are_reported(cli, isolated_home):
    _with_plan(cli)
    cli("config", "set", "horizon_days", "10")
    check = _checks(_doctor(cli))["beyondHorizon"]
    assert check["status"] == "info" and check["message"].startswith("79 scheduled sessions lie beyond")


def test_big_wal_is_checkpointed_by_fix(cli, isolated_home, monkeypatch):
    _with_plan(cli)
    live = isolated_home / "practiceplan.db"
    other = sqlite3.connect(live, isolation_level=None)
    other.execute("PRAGMA wal_autocheckpoint = 0")
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE plan_occurrences SET doc = doc")
    other.execute("COMMIT")
    wal_size = Path(f"{live}-wal").stat().st_size
    monkeypatch.setattr(data, "WAL_WARN_BYTES", wal_size - 1)
    assert _checks(_doctor(cli))["wal"]["status"] == "warning"
    fixed = _checks(_doctor(cli, "--fix"))["wal"]
    assert fixed["fixed"] and fixed["message"].endswith("now 0 MiB")
    assert Path(f"{live}-wal").stat().st_size == 0
    other.close()


def test_loose_permissions_are_fixed(cli, isolated_home):
    _with_plan(cli)
    live = isolated_home / "practiceplan.db"
    os.chmod(live, 0o644)
    credentials = isolated_home / "credentials.json"
    credentials.write_text('{"token": "x"}')
    os.chmod(credentials, 0o644)
    report = _doctor(cli, code=65)
    checks = _checks(report)
    assert checks["permissions"]["status"] == "warning" and "practiceplan.db (644)" in checks["permissions"]["message"]
    assert checks["credentials"]["status"] == "error" and "sync token" in checks["credentials"]["message"]
    fixed = _doctor(cli, "--fix")
    assert fixed["ok"] is True and _checks(fixed)["credentials"]["fixed"]
    assert live.stat().st_mode & 0o777 == 0o600 and credentials.stat().st_mode & 0o777 == 0o600
    assert _checks(_doctor(cli))["credentials"]["message"].endswith("private (600)")


def test_network_filesystem_is_detected(tmp_path, isolated_home):
    planner = _planner(isolated_home)
    planner.store  # noqa: B018
    home = str(isolated_home).replace(" ", "\\040")
    mounts = f"/dev/sda1 / ext4 rw 0 0\nfiler:/export {home} nfs4 rw,relatime 0 0\n"
    check = _checks(planner.data.doctor(mounts=mounts))["filesystem"]
    assert check["status"] == "warning" and "network file system (nfs4" in check["message"]
    local = _checks(planner.data.doctor(mounts="/dev/sda1 / ext4 rw 0 0\n"))["filesystem"]
    assert local["status"] == "ok" and "(ext4)" in local["message"]
    planner.close()


def test_mount_for_longest_prefix_and_escapes():
    mounts = ("/dev/sda1 / ext4 rw 0 0\n"
              "srv:/m /mnt/my\\040music cifs rw 0 0\n"
              "srv:/x /mnt/my fuse.sshfs rw 0 0\n")
    assert data.mount_for(Path("/mnt/my music/practice"), mounts) == ("/mnt/my music", "cifs")
    assert data.mount_for(Path("/mnt/my/x"), mounts) == ("/mnt/my", "fuse.sshfs")
    assert data.mount_for(Path("/mnt/mystery"), mounts) == ("/", "ext4")


def test_old_schema_is_reported_and_migrated_by_fix(cli, isolated_home):
    copy_fixture(FIXTURES / "schema-1.db", isolated_home)
    report = _doctor(cli)
    assert report["schemaVersion"] == 1
    check = _checks(report)["schema"]
    assert check["status"] == "warning" and f"migrates it to {schema.SCHEMA_VERSION}" in check["message"]
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # doctor alone does not migrate
    fixed = _doctor(cli, "--fix")
    assert _checks(fixed)["schema"]["fixed"] and fixed["schemaVersion"] == schema.SCHEMA_VERSION
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    conn.close()
    assert [b["reason"] for b in cli("backup", "--list", "--json").json["backups"]] == ["pre-migration from schema 1"]


def test_newer_database_is_an_error(cli, isolated_home):
    cli("log", "add", "--minutes", "5")
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    check = _checks(_doctor(cli, code=65))["database"]
    assert check["status"] == "error" and "newer practiceplan" in check["message"]
