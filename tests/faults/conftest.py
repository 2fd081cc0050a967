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
