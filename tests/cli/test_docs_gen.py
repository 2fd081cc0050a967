"""docs/cli.md and the man page docs/practiceplan.1 are generated from the command tree and kept current."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main

from practiceplan.cli import docs_gen
from practiceplan.cli.app import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(docs_gen.FILES))
def test_generated_docs_are_current(name):
    committed = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert committed == docs_gen.FILES[name](app), (
        f"docs/{name} is stale: run `python -m practiceplan.cli.docs_gen docs`")


def test_every_command_is_in_the_reference_once():
    command = typer.main.get_command(app)
    text = docs_gen.markdown(app)
    paths = [path for path, _, _ in docs_gen.walk_commands(command, "practiceplan")]
    for path in paths:
        heading = "## " + " ".join(("practiceplan", *path))
        assert text.count(heading + "\n") == 1, heading
        assert f"(#{docs_gen.anchor(path)})" in text  # the anchor the contents list links to
    assert "practiceplan plan restore [OPTIONS] ID" in text and "{" not in text.split("## practiceplan\n")[1][:200]
    assert text.index("## practiceplan today") < text.index("## practiceplan plan\n") < text.index("## practiceplan stats")


def test_man_page_is_valid_roff():
    page = docs_gen.man(app)
    assert page.startswith(".TH PRACTICEPLAN 1 ") and ".SH NAME" in page and ".SH ENVIRONMENT" in page
    assert '.SS "practiceplan template trust add"' in page
    assert not [line for line in page.splitlines() if line.startswith("'")]
    man = shutil.which("man")
    if man is None:
        pytest.skip("man not installed")
    result = subprocess.run([man, "-l", str(ROOT / "docs" / "practiceplan.1")], capture_output=True, text=True,
                            env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin", "MAN_KEEP_FORMATTING": ""}, timeout=60)
    assert result.returncode == 0 and "practiceplan plan add" in result.stdout, result.stderr
