"""The README's shell examples run as printed against a fixed clock and print what the README says.

Each ```sh block of the sections below is run line by line (comments are the README's claims, checked in
CLAIMS). The README's example ids are placeholders, so they are replaced by real ones when first used: a session
id by the next scheduled session, 3f2a1c by the plan "Scales", 9d8e7f by the template, 41c0de by the adopted
plan, the elided public key by the tutor's key, <backup> by the newest backup. The tutor and learner of the
templates example have homes of their own; the rescheduling example runs a week later, when there is something
to catch up.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
SESSION_PLACEHOLDERS = ("9c41d2", "7e10aa")
NOT_RUN = {  # lines that need what a test does not have
    "practiceplan import json mirubato-data-export-2026-03-01.json": "needs an export from the Mirubato web app",
}
# README claim (a command's start) -> text its output (stdout + stderr) must contain
CLAIMS = {
    "practiceplan plan list": ["Mon, Wed, Fri at 07:30, Europe/Berlin", "monthly on the 2nd Tuesday"],
    "practiceplan today": ["Overdue", "Upcoming", "This week", "Next: "],
    "practiceplan plan edit Scales --at 08:00 --dry-run": ["38 sessions moved", "nothing was written"],
    "practiceplan stats --plan Scales": ["Scales"],
    "practiceplan template publish": ["(version 1)"],
    "practiceplan template keygen": ["ed25519:"],
    "practiceplan template sign scales.json": ["Signed scales.json with key "],
    "practiceplan template import scales.json": ["signed by Ms Lee (key "],
    "practiceplan reschedule 9c41d2 --to": ["Dry run: ", "nothing was written"],
    "practiceplan calendar --weeks 3": ["Week of"] * 3,
    "practiceplan backup --list": ["practiceplan-"],
    "practiceplan backup": ["Backed up to"],
}


def shell_block(heading: str) -> list[str]:
    """The commands of the first ```sh block after ``heading`` (continuations joined, `&&` chains split), each
    with its comment as ``command  # comment``."""
    section = README.read_text(encoding="utf-8").split(heading + "\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    lines = []
    for raw in block.splitlines():
        if raw.startswith("#") or not raw.strip():
            lines.append(raw)
            continue
        command, _, comment = raw.partition("  #")
        for part in command.split(" && "):
            lines.append(" ".join(part.split()) + (f"  #{comment}" if comment else ""))
    return lines


class Runner:
    def __init__(self, cli, tmp_path: Path, monkeypatch) -> None:
        self.cli, self.tmp, self.monkeypatch = cli, tmp_path, monkeypatch
        self.values: dict[str, str] = {}
        self.outputs: list[tuple[str, str]] = []

    def home(self, name: str) -> None:
        self.monkeypatch.setenv("PRACTICEPLAN_HOME", str(self.tmp / name))
        self.values = {k: v for k, v in self.values.items() if k.startswith("ed25519:")}

    def value(self, placeholder: str) -> str:
        if placeholder not in self.values:
            self.values[placeholder] = self.lookup(placeholder)
        return self.values[placeholder]

    def lookup(self, placeholder: str) -> str:
        if placeholder in SESSION_PLACEHOLDERS:
            return self.cli("next", "--json").json["next"]["id"]
        if placeholder == "3f2a1c":
            return next(p["id"] for p in self.cli("plan", "list", "--json").json["plans"] if p["title"] == "Scales")
        if placeholder == "9d8e7f":
            return self.cli("template", "list", "--json").json["templates"][0]["template"]["id"]
        if placeholder == "41c0de":
            return next(p["id"] for p in self.cli("plan", "list", "--json").json["plans"]
                        if (p.get("metadata") or {}).get("adoption"))
        if placeholder == "<backup>":
            return self.cli("backup", "--list", "--json").json["backups"][0]["path"]
        raise AssertionError(placeholder)

    def run_block(self, heading: str) -> None:
        for line in shell_block(heading):
            if line.startswith("# learner"):
                self.home("learner")
            if line.startswith("#") or not line.strip():
                continue
            command = line.split("  #")[0]
            if command in NOT_RUN:
                continue
            self.run(command)

    def run(self, command: str) -> None:
        text = command.replace("[--fix] [--json]", "").replace("~/", f"{self.tmp}/")
        for placeholder in (*SESSION_PLACEHOLDERS, "3f2a1c", "9d8e7f", "41c0de", "<backup>"):
            if placeholder in text:
                text = text.replace(placeholder, self.value(placeholder))
        text = text.replace("ed25519:3b6a27bc...", self.values.get("ed25519:3b6a27bc...", "?"))
        words = shlex.split(text)
        assert words[0] == "practiceplan", command
        result = self.cli(*words[1:], ok=False)
        assert result.code == 0, (command, result)
        self.outputs.append((command, result.stdout + result.stderr))
        for claim, needles in CLAIMS.items():
            if command.startswith(claim):
                output = result.stdout + result.stderr
                assert all(output.count(n) >= needles.count(n) for n in needles), (command, needles, output)
                break
        if command == "practiceplan template keygen":
            self.values["ed25519:3b6a27bc..."] = re.search(r"ed25519:[0-9a-f]{64}", result.stdout).group()


@pytest.fixture
def readme(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return Runner(cli, tmp_path, monkeypatch)


def test_everyday_use(readme):
    readme.home("me")
    readme.run_block("## Everyday use")
    entries = readme.cli("log", "list", "--json").json["entries"]
    assert len(entries) == 2  # the check-in's entry stays after `uncheck`, plus the free practice
    assert readme.cli("plan", "show", "Scales", "--json").json["plan"]["schedule"]["timeOfDay"] == "07:30"


def test_templates_tutor_and_learner(readme):
    readme.home("tutor")
    readme.cli("plan", "add", "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "07:30")
    readme.run_block("## Templates")
    assert (readme.tmp / "signed.json").exists()
    plans = readme.cli("plan", "list", "--json").json["plans"]
    assert [p["title"] for p in plans] == ["Learn Clair de lune — Debussy"]


def test_rescheduling_a_week_later(readme, set_now):
    readme.home("me")
    readme.cli("plan", "add", "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "07:30", "--minutes", "20")
    readme.cli("plan", "add", "Sonata", "--every", "weekly", "--on", "fr", "--at", "18:00", "--minutes", "45")  # Fridays over 60 min
    set_now("2026-03-09T09:00:00Z")
    readme.run_block("## Reminders, rescheduling, calendars")
    assert "BEGIN:VCALENDAR" in (readme.tmp / "practice.ics").read_text()


def test_your_data(readme):
    readme.home("me")
    readme.cli("plan", "add", "Scales", "--every", "daily", "--at", "07:30")
    readme.cli("log", "add", "--minutes", "20")
    readme.run_block("## Your data: backup, restore, export, doctor")
    assert (readme.tmp / "all.json").exists() and (readme.tmp / "logbook.csv").exists()
