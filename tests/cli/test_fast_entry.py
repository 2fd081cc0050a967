"""The fast entry path for the read commands (`today`, `next`, `stats`, `forecast`, `occurrences`, with their
options) behaves exactly like the Typer commands, without importing Typer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from practiceplan.cli.entry import fast_form

TYPER_MAIN = "import sys; sys.argv[0] = 'practiceplan'; from practiceplan.cli.app import main; main()"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["today"], ("today", None, False, {})),
        (["next", "--json"], ("next", None, True, {})),
        (["--db", "x.db", "today", "--json"], ("today", "x.db", True, {})),
        (["--db=x.db", "next"], ("next", "x.db", False, {})),
        (["stats", "--json"], ("stats", None, True, {})),
        (["stats", "--plan", "x"], ("stats", None, False, {"plan": "x"})),
        (["stats", "--from=2026-01-01", "--to", "today", "--json"],
         ("stats", None, True, {"from_": "2026-01-01", "to": "today"})),
        (["forecast", "--days", "14"], ("forecast", None, False, {"days": 14})),
        (["occurrences", "--status", "completed", "--plan", "ab"],
         ("occurrences", None, False, {"status": "completed", "plan": "ab"})),
        # what Typer must judge (usage errors, help, anything unknown) goes to Typer
        (["forecast", "--days", "0"], None), (["forecast", "--days", "x"], None), (["forecast", "--days", "367"], None),
        (["occurrences", "--status", "missed"], ("occurrences", None, False, {"status": "missed"})),
        (["occurrences", "--status", "bogus"], None), (["stats", "--plan"], None), (["stats", "--plan", "-x"], None),
        (["stats", "--plan", "a", "--plan", "b"], None), (["stats", "--bogus", "1"], None), (["stats", "-h"], None),
        (["stats", "--svg", ""], None), (["next", "--plan", "x"], None),
        (["today", "--help"], None), (["today", "--json", "--json"], None), (["plan", "list"], None),
        (["--db"], None), (["--db=", "today"], None), (["--version"], None),
        ([], ("today", None, False, {})),  # `practiceplan` alone shows today (issue 10)
        (["--db", "x.db"], ("today", "x.db", False, {})),
    ],
)
def test_fast_form(argv, expected):
    assert fast_form(argv) == expected


@pytest.fixture
def home(tmp_path):
    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": "Europe/Berlin", "PATH": "/usr/bin:/bin",
           "PRACTICEPLAN_NOW": "2026-03-03T18:00:00Z"}
    for args in (["plan", "add", "Daily", "--every", "daily", "--at", "08:00", "--start", "2026-03-01"],
                 ["log", "add", "--minutes", "20", "--when", "2026-03-02T10:00"]):
        subprocess.run([sys.executable, "-m", "practiceplan", *args], env=env, check=True, capture_output=True)
    return env


@pytest.mark.parametrize("args", [
    ["today"], ["today", "--json"], ["next"], ["next", "--json"], ["stats"], ["stats", "--json"],
    ["stats", "--from", "2026-03-01", "--to", "today"], ["stats", "--plan", "plan_", "--json"],
    ["forecast"], ["forecast", "--days", "3", "--json"], ["occurrences", "--from", "yesterday"],
    ["occurrences", "--status", "scheduled", "--json"], ["occurrences", "--from", "2026-03-01", "--status", "missed"],
    ["occurrences", "--from", "2026-03-01", "--status", "before-plan", "--json"],
])
def test_fast_path_prints_what_the_typer_command_prints(home, args):
    fast = subprocess.run([sys.executable, "-m", "practiceplan", *args], env=home, capture_output=True, text=True)
    slow = subprocess.run([sys.executable, "-c", TYPER_MAIN, *args], env=home, capture_output=True, text=True)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert fast.returncode == 0 and fast.stdout


@pytest.mark.parametrize("args", [["stats", "--plan", "nope"], ["stats", "--from", "2026-03-05", "--to", "2026-03-01"],
                                  ["occurrences", "--from", "not a date at all"], ["occurrences", "--history", "zzz"]])
def test_fast_path_user_errors_match_typer(home, args):
    fast = subprocess.run([sys.executable, "-m", "practiceplan", *args], env=home, capture_output=True, text=True)
    slow = subprocess.run([sys.executable, "-c", TYPER_MAIN, *args], env=home, capture_output=True, text=True)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert fast.returncode in (3, 65) and fast.stderr.startswith("practiceplan: error: ")


def test_fast_path_errors_match_and_skip_typer(home, tmp_path):
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['practiceplan', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('practiceplan', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    sys.stderr.write(f'CODE={exit.code} TYPER={\"typer\" in sys.modules}\\n')\n"
    )
    ok = subprocess.run([sys.executable, "-c", probe, "today"], env=home, capture_output=True, text=True)
    assert "CODE=0 TYPER=False" in ok.stderr
    folder = tmp_path / "a-folder"
    folder.mkdir()
    fast = subprocess.run([sys.executable, "-m", "practiceplan", "--db", str(folder), "today"], env=home,
                          capture_output=True, text=True)
    slow = subprocess.run([sys.executable, "-c", TYPER_MAIN, "--db", str(folder), "today"], env=home,
                          capture_output=True, text=True)
    assert fast.returncode == slow.returncode == 65
    assert fast.stderr == slow.stderr and fast.stderr.startswith("practiceplan: error: ")
    helped = subprocess.run([sys.executable, "-m", "practiceplan", "today", "--help"], env=home, capture_output=True,
                            text=True)
    assert helped.returncode == 0 and "Examples:" in helped.stdout
