"""Completion of values (issue 10): plan titles and ids, sessions for checkin/skip, template ids, time zones,
answered by `practiceplan __complete SHELL KIND PREFIX` without Typer, Rich or sqlite_utils, in under 100 ms."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def planned(cli):
    scales = cli("plan", "add", "Scales & arpeggios", "--every", "daily", "--at", "07:30", "--json").json["plan"]
    cli("plan", "add", "Repertoire: Clair de lune", "--every", "weekly", "--on", "mo,we", "--at", "18:00")
    doomed = cli("plan", "add", "Old routine", "--every", "daily", "--at", "12:00", "--json").json["plan"]
    cli("plan", "delete", doomed["id"], "--yes")
    scales["doomed"] = doomed["id"][5:11]
    return scales


def complete(*args: str, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run([sys.executable, "-m", "practiceplan", "__complete", *args],
                            env=env or dict(os.environ), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result
    return result.stdout.splitlines()


def test_plans_by_id_and_title(planned):
    short = planned["id"][5:11]
    fish = complete("fish", "plan", "")
    assert f"{short}\tScales & arpeggios" in fish and f"Scales & arpeggios\tid {short}" in fish
    assert not any("Old routine" in line for line in fish)
    assert complete("bash", "plan", "scal") == ["Scales & arpeggios"]
    zsh = complete("zsh", "plan", "Rep")
    assert len(zsh) == 1 and zsh[0].startswith("Repertoire\\: Clair de lune:id ")
    assert complete("bash", "plan", short[:4]) == [short]
    assert complete("bash", "deleted-plan", "") == [planned["doomed"], "Old routine"]


def test_sessions_near_now_still_to_do_first(planned):
    lines = complete("fish", "occurrence", "")
    assert lines and all("\t" in line for line in lines)
    first_value, first_text = lines[0].split("\t")
    assert first_text.endswith("(scheduled)") and len(first_value) >= 6
    assert "Mon 02 Mar 18:00 Repertoire: Clair de lune (scheduled)" in [line.split("\t")[1] for line in lines]
    assert complete("bash", "occurrence", first_value) == [first_value]


def test_templates_and_zones(cli, planned):
    template = cli("template", "create", "--from-plan", "Scales", "--json").json["template"]
    assert template["id"][9:15] in complete("bash", "template", "")
    assert complete("bash", "zone", "europe/berl") == ["Europe/Berlin"]
    assert "America/New_York" in complete("bash", "zone", "America/New")
    assert complete("bash", "nonsense", "") == []
    assert complete("bash", "plan", "--plan=Scal") == ["Scales & arpeggios"]


def test_no_database_no_values_and_nothing_created(tmp_path):
    env = {**os.environ, "PRACTICEPLAN_HOME": str(tmp_path / "empty")}
    assert complete("bash", "plan", "", env=env) == [] and not (tmp_path / "empty").exists()


def test_fast_and_light(planned):
    """Under 100 ms per Tab press (best of five runs on a busy machine), without Typer, Rich or sqlite_utils."""
    probe = ("import sys, runpy\n"
             "sys.argv = ['practiceplan', '__complete', 'bash', 'occurrence', '']\n"
             "try:\n    runpy.run_module('practiceplan', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "heavy = sorted(m for m in ('typer', 'rich', 'sqlite_utils', 'dateparser', 'click', 'dateutil') if m in sys.modules)\n"
             "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "HEAVY=\n" in result.stderr, result.stderr
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        complete("bash", "occurrence", "")
        best = min(best, time.perf_counter() - start)
    assert best < 0.100, f"__complete took {best * 1000:.0f} ms"


def test_the_scripts_ask_for_values(planned, tmp_path):
    """The committed bash script, run by a real bash, offers sessions after checkin and plans after --plan."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not installed")
    shim = tmp_path / "bin" / "practiceplan"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m practiceplan \"$@\"\n")
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}"}

    def tab(*words: str) -> list[str]:
        quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
        driver = (f"source {ROOT / 'completions' / 'practiceplan.bash'}\nCOMP_WORDS=({quoted})\n"
                  f"COMP_CWORD={len(words) - 1}\n_practiceplan\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
        result = subprocess.run([bash, "--norc", "--noprofile", "-c", driver], env=env, capture_output=True,
                                text=True, timeout=60)
        return [line for line in result.stdout.splitlines() if line]

    sessions = tab("practiceplan", "checkin", "")
    assert sessions and sessions[0] == complete("bash", "occurrence", "")[0]
    assert tab("practiceplan", "skip", sessions[0][:5]) == [sessions[0]]
    assert tab("practiceplan", "calendar", "--plan", "Rep") == ["Repertoire:\\ Clair\\ de\\ lune"]
    assert tab("practiceplan", "plan", "add", "X", "--tz", "Europe/Berl") == ["Europe/Berlin"]
    assert tab("practiceplan", "plan", "restore", "") == [planned["doomed"], "Old\\ routine"]
    assert tab("practiceplan", "checkin", "--mi") == ["--minutes"]


def test_value_kinds_of_the_command_tree():
    import typer.main

    from practiceplan.cli.app import app
    from practiceplan.cli.completion import value_kind

    command = typer.main.get_command(app)

    def kinds(*path: str) -> dict[str, str | None]:
        cmd = command
        for name in path:
            cmd = cmd.commands[name]
        return {p.name: value_kind(path, p) for p in cmd.params}

    assert kinds("checkin")["occ"] == "occurrence" and kinds("skip")["occ"] == "occurrence"
    assert kinds("plan", "show")["plan_id"] == "plan" and kinds("plan", "restore")["plan_id"] == "deleted-plan"
    assert kinds("template", "adopt")["template_id"] == "template" and kinds("stats")["plan"] == "plan"
    assert kinds("plan", "add")["tz"] == "zone" and kinds("plan", "add")["title"] is None
