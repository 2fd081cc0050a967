"""`practiceplan sync` on the command line (in-process, against the test servers): exit codes, what is kept when
a sync gives up, the summary in text and JSON, no progress bar in a pipe, refused items, conflicts and their
resolution, `sync status`, and the cron line."""

from __future__ import annotations

import json
import socket
import sqlite3
from typing import Any

import pytest

from practiceplan.sync import wire
from tests.sync.homes import Home, server_versions
from tests.sync.test_faults import one_click_command  # noqa: F401  (autouse: one click command per test)

USER = "user_a"
PUSH = "/api/sync/push"
SUMMARY_KEYS = {"remote", "dry_run", "mode", "received", "merged", "deleted_here", "sent", "unchanged", "conflicts",
                "rejected", "batches", "retries", "warnings", "pending"}


@pytest.fixture
def home(tmp_path, mirubato):
    return Home(tmp_path / "a", mirubato.url, mirubato.token(USER))


@pytest.fixture
def two(tmp_path, mirubato):
    token = mirubato.token(USER)
    return Home(tmp_path / "a", mirubato.url, token), Home(tmp_path / "b", mirubato.url, token)


def add(home: Home, minutes: int, notes: str = "") -> str:
    return home.json("log", "add", "--minutes", str(minutes), "--notes", notes or f"{minutes} minutes")["entry"]["id"]


def push_keys(state: Any, mark: int = 0) -> list[str | None]:
    with state.lock:
        return [key for _m, path, key in state.requests[mark:] if path == PUSH]


def rewrite(home: Home, table: str, entity_id: str, change: Any) -> None:
    """Change a stored document behind practiceplan's back (still queued: the outbox row stays)."""
    with sqlite3.connect(home.db) as conn:
        doc = json.loads(conn.execute(f"SELECT doc FROM {table} WHERE id = ?", (entity_id,)).fetchone()[0])
        change(doc)
        conn.execute(f"UPDATE {table} SET doc = ? WHERE id = ?", (json.dumps(doc), entity_id))


def let_through(monkeypatch: pytest.MonkeyPatch, *ids: str) -> None:
    """The local validator passes these items, so they are sent and the server has to refuse them."""
    original = wire.problems

    def problems(kind: str, item: dict[str, Any]) -> list[str]:
        return [] if item.get("id") in ids else original(kind, item)

    monkeypatch.setattr(wire, "problems", problems)


# --------------------------------------------------------------------------- exit codes


def test_unreachable_server_exits_69_and_changes_nothing(tmp_path, mirubato):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    home = Home(tmp_path / "a", f"http://127.0.0.1:{port}", mirubato.token(USER))
    add(home, 10)
    result = home.cli("sync", ok=False)
    assert result.exit_code == 69, (result.stdout, result.stderr)
    assert f"cannot reach 127.0.0.1:{port}" in result.stderr and result.stdout == ""
    assert home.token not in result.stderr
    assert home.outbox() == 1 and home.json("sync", "status")["last_sync"] is None


def test_not_a_sync_server_exits_69(tmp_path, mirubato):
    home = Home(tmp_path / "a", mirubato.url + "/elsewhere", mirubato.token(USER))
    result = home.cli("sync", ok=False)
    assert result.exit_code == 69 and "not a practiceplan/Mirubato sync server" in result.stderr


@pytest.mark.parametrize("token", ["wrong-secret", "expired"])
def test_refused_token_exits_77(tmp_path, mirubato, token):
    bad = (mirubato.state.token_for(USER, secret="wrong") if token == "wrong-secret"
           else mirubato.state.token_for(USER, expires_in=-60))
    home = Home(tmp_path / "a", mirubato.url, bad)
    add(home, 10)
    result = home.cli("sync", ok=False)
    assert result.exit_code == 77, (result.stdout, result.stderr)
    assert "refused the token (HTTP 401)" in result.stderr and "practiceplan login" in result.stderr
    assert bad not in result.stderr + result.stdout
    assert home.outbox() == 1 and mirubato.state.live_rows(USER) == []


@pytest.mark.parametrize("fault,count,seconds", [("429", 1, 120), ("500-before", 4, 1), ("500-after", 4, 1)])
def test_gives_up_with_75_keeps_the_batch_and_resends_it_under_the_same_key(home, mirubato, fault, count, seconds):
    state = mirubato.state
    ids = {add(home, m) for m in (10, 20, 30)}
    state.inject(fault, count, path=PUSH, seconds=seconds)
    if fault == "500-after":  # the pull that follows a push with no answer would show it landed: it fails too
        state.inject("500-before", 4, path="/api/sync/pull", skip=1)
    result = home.cli("sync", ok=False)
    assert result.exit_code == 75, (result.stdout, result.stderr)
    assert "nothing is lost" in result.stderr
    keys = push_keys(state)
    assert len(keys) == (1 if fault == "429" else 4) and len(set(keys)) == 1
    # nothing lost: the entries, the outbox and the batch stored with its key
    assert set(home.docs("logbook_entry")) == ids and home.outbox() == 3
    status = home.json("sync", "status")
    assert status["unsent_batch"] == {"items": 3, "attempts": len(keys)}
    assert status["pending"]["total"] == 3 and status["last_sync"] is None
    text = home.cli("sync", "status").stdout
    assert f"in flight:  a batch of 3 (tried {len(keys)}x); the next sync resends it as is, unless the server shows " \
           "it arrived" in text
    # the next sync: resent as is (same key) when it never landed; found on the server when it did
    again = home.sync()
    assert again["conflicts"] == [] and again["pending"] == 0
    keys = push_keys(state)
    assert len(set(keys)) == 1, keys
    # 429: nothing processed, resent once; 500-before: four refusals, then the resend; 500-after: it landed
    # (four times, as Mirubato stores no answer when it fails after writing), so the next pull settles it
    assert len(keys) == {"429": 2, "500-before": 5, "500-after": 4}[fault], keys
    assert home.versions() == server_versions(state, USER) and home.outbox() == 0
    assert home.json("sync", "status")["unsent_batch"] is None
    assert len(state.live_rows(USER)) == 3


def test_5xx_on_the_pull_after_retries_exits_75(home, mirubato):
    add(home, 10)
    mirubato.state.inject("500-before", 4, path="/api/sync/pull")
    result = home.cli("sync", "--json", ok=False)
    assert result.exit_code == 75 and result.stdout == "" and "HTTP 500" in result.stderr
    assert home.outbox() == 1 and home.json("sync", "status")["unsent_batch"] is None
    assert home.sync()["sent"] == 1


# --------------------------------------------------------------------------- the summary


def test_json_summary_keys_and_no_progress_bar_in_a_pipe(home, mirubato):
    home.cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30")
    for m in range(1, 11):
        add(home, m)  # with the plan and its 90 sessions: two batches
    result = home.cli("sync", "--json")
    data = json.loads(result.stdout)
    assert set(data) == SUMMARY_KEYS
    assert data["remote"] == mirubato.url and data["mode"] == "full" and data["dry_run"] is False
    assert data["sent"] > 100 and data["batches"] >= 2 and data["pending"] == 0 and data["retries"] == 0
    assert data["conflicts"] == [] and data["rejected"] == [] and data["warnings"] == []
    # stderr is not a terminal here: no progress bar, no cursor movement, nothing at all on stderr
    assert result.stderr == ""
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    home.cli("plan", "edit", "Scales", "--minutes", "45")
    text = home.cli("sync")
    assert text.stderr == "" and "\r" not in text.stdout and "\x1b" not in text.stdout
    assert text.stdout.startswith("sent ") and f"— {mirubato.url} (full pull)" in text.stdout


def test_progress_is_not_even_asked_for_in_a_pipe(home, mirubato, monkeypatch):
    from practiceplan.render import output

    called = []
    monkeypatch.setattr(output, "is_terminal", lambda stream: called.append(stream) or False)
    add(home, 10)
    result = home.cli("sync")
    assert result.stderr == "" and called  # the check ran, and said no


def test_ext_server_summary_and_status(tmp_path, mirubato_ext):
    home = Home(tmp_path / "a", mirubato_ext.url, mirubato_ext.token(USER))
    add(home, 10)
    data = home.sync()
    assert set(data) == SUMMARY_KEYS and data["mode"] == "incremental" and data["sent"] == 1
    status = home.json("sync", "status")
    assert status["capabilities"] == ["conditional-push", "incremental-pull", "tombstones"]


# --------------------------------------------------------------------------- status before and after


def test_status_json_before_and_after_a_sync(home, mirubato):
    ids = [add(home, m) for m in (10, 20)]
    before = home.json("sync", "status")
    assert set(before) == {"remote", "device_id", "pending", "unsent_batch", "last_sync", "capabilities", "conflicts"}
    assert before["remote"] == mirubato.url and before["device_id"]
    assert before["pending"] == {"total": 2, "practice_plan": 0, "plan_occurrence": 0, "logbook_entry": 2,
                                 "plan_template": 0}
    assert before["unsent_batch"] is None and before["last_sync"] is None
    assert before["capabilities"] is None and before["conflicts"] == 0
    assert "last sync:  never" in home.cli("sync", "status").stdout
    home.sync()
    after = home.json("sync", "status")
    assert after["pending"]["total"] == 0 and after["unsent_batch"] is None and after["conflicts"] == 0
    assert after["capabilities"] == []  # a plain Mirubato server: full snapshots, no extensions
    last = after["last_sync"]
    assert last["sent"] == 2 and last["received"] == 0 and last["merged"] == 0 and last["conflicts"] == 0
    assert last["rejected"] == 0 and last["at"].startswith("2026-03-02T")
    assert after["device_id"] == before["device_id"]
    assert {r.entity_id for r in mirubato.state.live_rows(USER)} == set(ids)
    assert "full snapshots (Mirubato protocol)" in home.cli("sync", "status").stdout


# --------------------------------------------------------------------------- conflicts: warning, --strict


def _older_edit_loses(a: Home, b: Home, minutes_a: int, minutes_b: int) -> str:
    """a edits an entry, b edits it later and syncs first: a's sync keeps b's version, a's is a conflict."""
    entry_id = add(a, 10, f"shared {minutes_a}")
    a.sync(), b.sync()
    a.cli("log", "edit", entry_id, "--minutes", str(minutes_a))
    b.tick(30)
    a.tick(30)
    b.cli("log", "edit", entry_id, "--minutes", str(minutes_b))
    b.sync()
    return entry_id


def test_conflicts_warn_with_exit_0_and_exit_1_with_strict(two, mirubato):
    a, b = two
    first = _older_edit_loses(a, b, 11, 12)
    result = a.cli("sync")
    assert result.exit_code == 0
    assert "practiceplan: warning: 1 conflict(s) recorded; see `practiceplan sync conflicts`" in result.stderr
    assert "1 conflict " in result.stdout
    second = _older_edit_loses(a, b, 21, 22)
    strict = a.cli("sync", "--strict", "--json", ok=False)
    assert strict.exit_code == 1 and "1 conflict(s) recorded" in strict.stderr
    data = json.loads(strict.stdout)
    assert [c["id"] for c in data["conflicts"]] == [second] and data["conflicts"][0]["kept"] == "remote"
    assert first != second
    # the sync itself completed: the device equals the server
    assert a.versions() == server_versions(mirubato.state, USER) and a.outbox() == 0
    assert a.cli("sync", "--strict").exit_code == 0  # nothing new recorded: no failure


def test_conflicts_and_resolve_both_ways(two, mirubato):
    a, b = two
    remote_won = _older_edit_loses(a, b, 11, 12)
    a.sync()
    # the other way round: a's edit is the newer one, b's older edit loses when b syncs last
    local_won = add(a, 40, "second shared")
    a.sync(), b.sync()
    b.cli("log", "edit", local_won, "--minutes", "41")
    a.tick(30)
    b.tick(30)
    a.cli("log", "edit", local_won, "--minutes", "42")
    b.sync()  # b's older edit goes to the server first
    a.sync()  # a's newer edit wins here and is pushed; the server's (b's) version is the conflict
    found = a.json("sync", "conflicts")
    assert [(c["entity_id"], c["kept"]) for c in found] == [(remote_won, "remote"), (local_won, "local")]
    for c in found:
        assert set(c) == {"id", "kind", "entity_id", "reason", "kept", "local", "remote", "at", "resolved_at",
                          "resolution"}
        assert c["kind"] == "logbook_entry" and c["resolved_at"] is None and c["reason"]
    by_id = {c["entity_id"]: c for c in found}
    assert by_id[remote_won]["local"]["duration"] == 11 and by_id[remote_won]["remote"]["duration"] == 12
    assert by_id[local_won]["local"]["duration"] == 42 and by_id[local_won]["remote"]["duration"] == 41
    text = a.cli("sync", "conflicts").stdout
    assert f"#{by_id[remote_won]['id']}" in text and "sync resolve ID --keep local|remote" in text

    # --keep local brings this device's losing version back, and it wins everywhere
    done = a.json("sync", "resolve", str(by_id[remote_won]["id"]), "--keep", "local")
    assert done == {"id": by_id[remote_won]["id"], "kind": "logbook_entry", "entity_id": remote_won, "kept": "local",
                    "changed": True}
    assert a.docs("logbook_entry")[remote_won]["duration"] == 11 and a.outbox() == 1
    # --keep remote on the one that kept the local version brings the server's (b's) version back
    line = a.cli("sync", "resolve", str(by_id[local_won]["id"]), "--keep", "remote").stdout
    assert line.startswith(f"conflict #{by_id[local_won]['id']} resolved: kept the remote version of {local_won}")
    assert a.docs("logbook_entry")[local_won]["duration"] == 41 and a.outbox() == 2
    assert a.json("sync", "conflicts") == []
    assert len(a.json("sync", "conflicts", "--all")) == 2
    result = a.sync()
    assert result["sent"] == 2 and result["conflicts"] == []
    b.sync()
    held = b.docs("logbook_entry")
    assert held[remote_won]["duration"] == 11 and held[local_won]["duration"] == 41
    expected = server_versions(mirubato.state, USER)
    assert a.versions() == b.versions() == expected

    # errors: an unknown id (3), one already resolved (65), no --keep (2), a bad --keep (2)
    assert a.cli("sync", "resolve", "999", "--keep", "local", ok=False).exit_code == 3
    again = a.cli("sync", "resolve", str(by_id[remote_won]["id"]), "--keep", "remote", ok=False)
    assert again.exit_code == 65 and "already resolved (kept local)" in again.stderr
    missing = a.cli("sync", "resolve", str(by_id[remote_won]["id"]), ok=False)
    assert missing.exit_code == 2 and "--keep local" in missing.stderr
    assert a.cli("sync", "resolve", str(by_id[remote_won]["id"]), "--keep", "mine", ok=False).exit_code == 2
    assert a.cli("sync", "resolve", "abc", "--keep", "local", ok=False).exit_code == 2


def test_resolving_the_version_already_in_place_changes_nothing(two, mirubato):
    a, b = two
    entry_id = _older_edit_loses(a, b, 11, 12)
    a.sync()
    number = a.json("sync", "conflicts")[0]["id"]
    done = a.json("sync", "resolve", str(number), "--keep", "remote")
    assert done["changed"] is False and a.outbox() == 0
    assert a.docs("logbook_entry")[entry_id]["duration"] == 12
    assert a.sync()["sent"] == 0


# --------------------------------------------------------------------------- refused items


def test_bare_400_splits_the_batch_and_reports_the_bad_item(home, mirubato, monkeypatch):
    state = mirubato.state
    good = [add(home, m) for m in range(1, 6)]
    bad = add(home, 7, "bad")
    rewrite(home, "logbook_entries", bad, lambda d: d.update(duration=-5))  # the server's schema refuses it
    let_through(monkeypatch, bad)
    result = home.cli("sync", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [(r["kind"], r["id"]) for r in data["rejected"]] == [("logbook_entry", bad)]
    assert "no field is known to be wrong" in data["rejected"][0]["problems"][0]
    assert [(c["id"], c["kept"]) for c in data["conflicts"]] == [(bad, "local")]
    assert data["sent"] == 5 and data["pending"] == 0
    assert "1 conflict(s) recorded" in result.stderr
    # the batch was split: several keys, the good items on the server, the bad one not
    keys = push_keys(state)
    assert len(keys) > 2 and len(set(keys)) > 2
    assert {r.entity_id for r in state.live_rows(USER)} == set(good)
    kept = [c for c in home.conflicts() if c["id"] == bad]
    assert len(kept) == 1 and kept[0]["kept"] == "local" and kept[0]["local"]["duration"] == -5
    assert "refused by the server (a bad request)" in kept[0]["reason"]
    assert home.outbox() == 0 and home.json("sync", "status")["unsent_batch"] is None
    # the text summary names it by id, and the good items of the next sync land too
    more = [add(home, m) for m in (30, 31)]
    worse = add(home, 8, "worse")
    rewrite(home, "logbook_entries", worse, lambda d: d.update(duration=-6))
    let_through(monkeypatch, bad, worse)
    text = home.cli("sync")
    assert f"  refused: logbook entry {worse}: " in text.stdout
    assert {r.entity_id for r in state.live_rows(USER)} == set(good) | set(more)
    assert home.cli("sync", "--strict").exit_code == 0  # nothing more: neither is resent


def test_per_item_conflict_in_a_200_becomes_a_conflict_record(home, mirubato, monkeypatch):
    plan = home.json("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30")["plan"]
    entry = add(home, 10)

    def break_rule(doc: dict[str, Any]) -> None:
        doc["schedule"]["rule"] = "RRULE:FREQ=DAILY"  # §4.2: the prefix makes it invalid

    rewrite(home, "practice_plans", plan["id"], break_rule)
    let_through(monkeypatch, plan["id"])
    data = home.sync()
    assert [(r["kind"], r["id"]) for r in data["rejected"]] == [("practice_plan", plan["id"])]
    assert "refused by the server: " in data["rejected"][0]["problems"][0]
    assert "recurrence" in data["rejected"][0]["problems"][0].lower()
    assert [(c["id"], c["kept"]) for c in data["conflicts"]] == [(plan["id"], "local")]
    assert mirubato.state.row(USER, "practice_plan", plan["id"]) is None
    assert mirubato.state.row(USER, "logbook_entry", entry) is not None
    kept = home.json("sync", "conflicts")
    assert [(c["kind"], c["entity_id"], c["kept"]) for c in kept] == [("practice_plan", plan["id"], "local")]
    assert kept[0]["local"]["schedule"]["rule"] == "RRULE:FREQ=DAILY" and kept[0]["remote"] is None
    assert home.outbox() == 0 and home.sync()["sent"] == 0


# --------------------------------------------------------------------------- cron


def test_cron_sync_line_never_carries_the_token(home):
    assert home.token and home.env()["PRACTICEPLAN_TOKEN"] == home.token
    result = home.cli("cron", "--sync-every", "30")
    assert home.token not in result.stdout + result.stderr
    sync_lines = [line for line in result.stdout.splitlines() if line.startswith("*/30 ")]
    assert len(sync_lines) == 1 and sync_lines[0].endswith(" sync"), result.stdout
    assert "PRACTICEPLAN_TOKEN" not in result.stdout and "Bearer" not in result.stdout
    data = home.json("cron", "--sync-every", "30")
    assert home.token not in json.dumps(data)
    assert data["sync_argv"][-1] == "sync" and data["sync_line"] == sync_lines[0]
