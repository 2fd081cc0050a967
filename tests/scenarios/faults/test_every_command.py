"""Issue 11 "must show": exit 1 keeps its README meaning ("a bug"). Every command runs against each fault of
issue 11 (and issue 10.4-6): a full disk, four kinds of damaged file, three bad database paths and a missing
folder, a read-only database, a clock far ahead, a clock outside the supported dates, and data stored outside
them. None may exit 1 or print "internal error" or a traceback.

The command table must name every command of the app (checked against the command tree), so a new command
is tried against the faults as soon as it exists.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from practiceplan.store import db as dbmod
from tests.conftest import FIXED_NOW, ZONE
from tests.scenarios.faults.conftest import DAMAGE

# Every leaf command, with one command line each ({names} are filled from the populated database). Commands
# that remove things come last, so the others still find what they need.
COMMANDS: list[tuple[str, ...]] = [
    ("today",), ("next",), ("occurrences",), ("occurrences", "--history", "{occ}"), ("stats",),
    ("stats", "--svg", "{out}/s.svg"), ("forecast",), ("forecast", "--svg", "{out}/f.svg"), ("events",),
    ("progress",), ("progress", "--svg", "{out}/p.svg"),
    ("calendar",), ("suggest",), ("remind",), ("cron",), ("completion", "bash"), ("demo", "--home", "{out}/demo"),
    ("checkin", "{occ2}", "--minutes", "20"), ("uncheck", "{occ}"), ("skip", "{occ3}"), ("unskip", "{occ3}"),
    ("reschedule", "{occ4}", "--to", "tomorrow 07:00"), ("defer", "{occ5}"),
    ("backup",), ("backup", "--list"), ("backup", "-o", "{out}/b.db"), ("doctor",), ("doctor", "--fix"),
    ("plan", "add", "Arpeggios", "--every", "daily", "--at", "07:00"), ("plan", "edit", "{plan}", "--at", "07:30"),
    ("plan", "list"), ("plan", "show", "{plan}"), ("plan", "archive", "{plan2}"), ("plan", "unarchive", "{plan2}"),
    ("log", "add", "--minutes", "5"), ("log", "list"), ("log", "show", "{entry}"),
    ("log", "edit", "{entry}", "--minutes", "7"), ("log", "import", "{entries}"),
    ("config", "path"), ("config", "show"), ("config", "set", "daily_capacity", "90"),
    ("export", "ics", "-o", "{out}/x.ics"), ("export", "json", "-o", "{out}/x.json"),
    ("export", "csv", "logbook"), ("import", "json", "{export}"),
    ("template", "create", "--from-plan", "{plan}", "--title", "Another"),
    ("template", "edit", "{template}", "--title", "Renamed"), ("template", "list"), ("template", "show", "{template}"),
    ("template", "publish", "{template}"), ("template", "export", "{template}", "-o", "{out}/t.json"),
    ("template", "lint", "{tfile}"), ("template", "preview", "{tfile}"), ("template", "keygen", "--name", "k2"),
    ("template", "sign", "{tfile}", "--key", "{key}", "-o", "{out}/signed.json"),
    ("template", "import", "{tfile2}", "--allow-unsigned"), ("template", "gallery"),
    ("template", "adopt", "{template}"), ("template", "upgrade", "{adopted}"),
    ("template", "trust", "add", "{pub}", "--name", "Tutor"), ("template", "trust", "list"),
    ("template", "trust", "remove", "Tutor"),
    ("remote", "set", "https://sync.example.com"), ("remote", "show"), ("login", "--token-stdin", "--no-verify"),
    ("auth", "status"), ("logout",), ("remote", "unset"),
    ("watch", "--help"),  # watching blocks on a server; tests/cli/test_watch.py runs it against one
    # shared plans: after `remote unset`, so none of them reaches for the network (see NEEDS_SERVER)
    *(NEEDS_SERVER := (
        ("plan", "share", "{plan}", "ana", "--as", "view"), ("plan", "members", "{plan}"), ("plan", "join", "ppi_x"),
        ("plan", "transfer", "{plan}", "ana", "--yes"), ("plan", "unshare", "{plan}", "ana", "--yes"),
    )),
    ("comment", "{occ}", "Slower on bar 12"), ("comments", "{plan}"), ("students",),
    ("sync", "status"), ("sync", "conflicts"), ("sync", "resolve", "1", "--keep", "local"),
    ("serve", "--help"),  # serving blocks; tests/server runs the app (and tests/server/test_cli.py the refusals)
    ("server", "user", "add", "anna", "--role", "tutor", "--database", "{out}/server.db"),
    ("server", "user", "list", "--database", "{out}/server.db"),
    ("server", "backup", "-o", "{out}/server-copy.db", "--database", "{out}/server.db"),
    ("server", "user", "revoke", "anna", "--database", "{out}/server.db"),
    ("log", "delete", "{entry2}"), ("plan", "delete", "{plan2}", "--yes"), ("plan", "restore", "{plan2}"),
    ("restore", "{backup}"),
]


def _leaf_commands() -> set[tuple[str, ...]]:
    from typer.main import get_command

    from practiceplan.cli.app import app

    found: set[tuple[str, ...]] = set()

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*path, name))
        else:
            found.add(path)

    walk(get_command(app), ())
    return found


def test_the_table_names_every_command():
    named = {tuple(w for w in line if not w.startswith(("-", "{")))[: len(path)]
             for line in COMMANDS for path in _leaf_commands() if line[: len(path)] == path}
    missing = _leaf_commands() - named
    assert not missing, f"add these commands to COMMANDS: {sorted(missing)}"


# --------------------------------------------------------------------------- the populated database


def _invoke(args: list[str], env: dict[str, str]) -> Any:
    from practiceplan.cli.app import app

    # stdin holds a token for `login --token-stdin` (no other command in the table reads stdin)
    return CliRunner().invoke(app, args, env=env, input="fault-table-token\n", catch_exceptions=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A home with two plans, a check-in, entries, a published and an adopted template, a key, a backup."""
    base = tmp_path_factory.mktemp("every-command")
    home = base / "home"
    env = {"PRACTICEPLAN_HOME": str(home), "PRACTICEPLAN_NOW": FIXED_NOW, "PRACTICEPLAN_TZ": ZONE, "NO_COLOR": "1",
           "COLUMNS": "120"}

    def run(*args: str) -> Any:
        result = _invoke(list(args), env)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    import json

    plan = json.loads(run("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20",
                          "--json").stdout)["plan"]
    plan2 = json.loads(run("plan", "add", "Etudes", "--every", "weekly", "--on", "mo", "--json").stdout)["plan"]
    occs = json.loads(run("occurrences", "--plan", plan["id"], "--json").stdout)["occurrences"]
    weekly = json.loads(run("occurrences", "--plan", plan2["id"], "--json").stdout)["occurrences"]
    run("checkin", occs[0]["id"], "--minutes", "20")
    entry = json.loads(run("log", "add", "--minutes", "30", "--json").stdout)["entry"]
    entry2 = json.loads(run("log", "add", "--minutes", "10", "--json").stdout)["entry"]
    tpl = json.loads(run("template", "create", "--from-plan", plan["id"], "--title", "Scales", "--json").stdout)
    run("template", "publish", tpl["template"]["id"])
    tfile = base / "template.json"
    run("template", "export", tpl["template"]["id"], "-o", str(tfile))
    foreign = json.loads(tfile.read_text())
    foreign["template"]["id"] = "template_fromsomeoneelse01"
    tfile2 = base / "foreign.json"
    tfile2.write_text(json.dumps(foreign))
    adopted = json.loads(run("template", "adopt", tpl["template"]["id"], "--json").stdout)
    key = json.loads(run("template", "keygen", "--json").stdout)
    import sqlite3

    with sqlite3.connect(home / "practiceplan.db") as conn:  # a sync conflict for `sync resolve 1`
        conn.execute("INSERT INTO conflicts (entity_type, entity_id, reason, kept, local_doc, at) "
                     "VALUES ('logbook_entry', ?, 'changed here and on the server', 'remote', ?, ?)",
                     (entry["id"], json.dumps({**entry, "duration": 31}), FIXED_NOW))
    conn.close()
    backup = json.loads(run("backup", "--json").stdout)
    export = base / "export.json"
    run("export", "json", "-o", str(export))
    entries = base / "entries.jsonl"
    entries.write_text(json.dumps({"id": "entry_imported1", "timestamp": "2026-02-01T10:00:00Z", "duration": 20}) + "\n")
    names = {"occ": occs[0]["id"], "occ2": occs[1]["id"], "occ3": occs[2]["id"], "occ4": occs[3]["id"],
             "occ5": weekly[0]["id"], "tfile2": str(tfile2), "plan": plan["id"], "plan2": plan2["id"], "entry": entry["id"],
             "entry2": entry2["id"], "template": tpl["template"]["id"], "tfile": str(tfile), "export": str(export),
             "adopted": _adopted_plan_id(adopted), "pub": key["publicKey"], "entries": str(entries),
             "backup": Path(backup["path"]).name, "key_rel": str(Path(key["privateKeyPath"]).relative_to(home))}
    return home, names


def _adopted_plan_id(result: dict[str, Any]) -> str:
    plan = result.get("plan") or {}
    return plan.get("id") or result.get("planId") or ""


# --------------------------------------------------------------------------- the faults


Fault = Callable[[Path, Path, pytest.MonkeyPatch], dict[str, Any]]


def _sqlite_and_files_full(home: Path, tmp: Path, m: pytest.MonkeyPatch) -> dict[str, Any]:
    configure = dbmod._configure

    def full(conn):
        configure(conn)
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")

    def no_space(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    m.setattr(dbmod, "_configure", full)
    m.setattr(os, "write", no_space)
    return {}


def _damaged(kind: str) -> Fault:
    def fault(home: Path, tmp: Path, m: pytest.MonkeyPatch) -> dict[str, Any]:
        DAMAGE[kind](home / "practiceplan.db")
        return {}

    return fault


def _bad_path(kind: str) -> Fault:
    def fault(home: Path, tmp: Path, m: pytest.MonkeyPatch) -> dict[str, Any]:
        path = tmp / "bad.db"
        if kind == "folder":
            path.mkdir()
        elif kind == "loop":
            path.symlink_to(path)
        elif kind == "dangling":
            path.symlink_to(tmp / "nowhere" / "x.db")
        else:
            path = tmp / "no" / "such" / "dir" / "x.db"
        return {"db": str(path)}

    return fault


def _read_only(home: Path, tmp: Path, m: pytest.MonkeyPatch) -> dict[str, Any]:
    real = os.access
    m.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK and str(p).startswith(str(home))
              else real(p, mode, **kw))
    return {}


def _clock(now: str) -> Fault:
    def fault(home: Path, tmp: Path, m: pytest.MonkeyPatch) -> dict[str, Any]:
        return {"env": {"PRACTICEPLAN_NOW": now}}

    return fault


def _far_data(home: Path, tmp: Path, m: pytest.MonkeyPatch) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(home / "practiceplan.db")
    with conn:
        plan_id = conn.execute("SELECT id FROM practice_plans LIMIT 1").fetchone()[0]
        for i, ts in enumerate(("9999-12-31T23:59:00.000Z", "0001-01-01T00:00:00.000Z")):
            doc = ('{"id":"entry_far%d","timestamp":"%s","duration":30,"type":"practice","instrument":"piano",'
                   '"pieces":[],"metadata":{}}' % (i, ts))
            conn.execute("INSERT INTO logbook_entries (id, updated_at, ts, duration, doc) VALUES (?, ?, ?, ?, ?)",
                         (f"entry_far{i}", "2026-03-01T00:00:00.000Z", 253402300740000 if i == 0 else -62135596800000,
                          30, doc))
            occ = ('{"id":"plan_occ_far%d","planId":"%s","scheduledStart":"%s","status":"scheduled"}'
                   % (i, plan_id, ts))
            conn.execute("INSERT INTO plan_occurrences (id, plan_id, scheduled_start, status, updated_at, doc) "
                         "VALUES (?, ?, ?, 'scheduled', ?, ?)", (f"plan_occ_far{i}", plan_id, ts,
                                                                 "2026-03-01T00:00:00.000Z", occ))
    conn.close()
    return {}


FAULTS: dict[str, Fault] = {
    "disk full": _sqlite_and_files_full,
    **{f"damaged ({kind})": _damaged(kind) for kind in sorted(DAMAGE)},
    **{f"--db {kind}": _bad_path(kind) for kind in ("folder", "loop", "dangling", "missing folder")},
    "read-only": _read_only,
    "clock in 2099": _clock("2099-03-02T09:00:00Z"),
    "clock in 9999": _clock("9999-12-01T00:00:00Z"),
    "clock before the check-in": _clock("2026-02-20T09:00:00Z"),
    "data in years 1 and 9999": _far_data,
}


@contextmanager
def _fault_home(template: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    home, names = template
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    out = tmp_path / "out"
    out.mkdir()
    filled = {**names, "out": str(out), "key": str(copy / names["key_rel"])}
    yield copy, filled


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_no_command_says_internal_error_under_a_fault(template, tmp_path, monkeypatch, fault):
    failures = []
    with _fault_home(template, tmp_path) as (home, names):
        env = {"PRACTICEPLAN_HOME": str(home), "PRACTICEPLAN_NOW": FIXED_NOW, "PRACTICEPLAN_TZ": ZONE,
               "NO_COLOR": "1", "COLUMNS": "120"}
        with monkeypatch.context() as m:
            setup = FAULTS[fault](home, tmp_path, m)
            env.update(setup.get("env", {}))
            root = ["--db", setup["db"]] if "db" in setup else []
            for line in COMMANDS:
                args = [*root, *(word.format(**names) for word in line)]
                result = _invoke(args, env)
                stderr = result.stderr if result.stderr_bytes is not None else ""
                if (result.exit_code == 1 or "internal error" in stderr or "Traceback" in stderr
                        or (result.exception is not None and not isinstance(result.exception, SystemExit))):
                    failures.append((line, result.exit_code, stderr[-300:], repr(result.exception)))
    assert not failures, f"{fault}: " + "\n".join(map(str, failures))


def test_every_command_line_works_without_a_fault(template, tmp_path):
    """The table itself is sound: with no fault, every line succeeds (so the fault runs test real work)."""
    failures = []
    with _fault_home(template, tmp_path) as (home, names):
        env = {"PRACTICEPLAN_HOME": str(home), "PRACTICEPLAN_NOW": FIXED_NOW, "PRACTICEPLAN_TZ": ZONE,
               "NO_COLOR": "1", "COLUMNS": "120"}
        for line in COMMANDS:
            result = _invoke([word.format(**names) for word in line], env)
            # the sharing commands need a `practiceplan serve` server (tests/cli/test_sharing.py): here, with no
            # remote, they must say so (exit 2), not fail
            expected = 2 if line in NEEDS_SERVER else 0
            if result.exit_code != expected or (expected and "no sync remote is set" not in result.stderr):
                failures.append((line, result.exit_code, result.stderr[-300:]))
    assert not failures, "\n".join(map(str, failures))
