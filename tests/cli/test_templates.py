"""The `template` command group: help with examples, JSON on every read, lazy imports, layering."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

SRC = Path(__file__).resolve().parents[2] / "src" / "practiceplan"


def leaves():
    from practiceplan.cli.app import app

    group = typer.main.get_command(app).commands["template"]

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    return list(walk(group, ["template"]))


def test_all_commands_exist():
    names = {" ".join(path[1:]) for path, _ in leaves()}
    assert names == {"create", "edit", "list", "show", "publish", "export", "lint", "preview", "keygen", "sign", "import",
                     "gallery", "adopt", "upgrade", "trust add", "trust list", "trust remove"}


@pytest.mark.parametrize("path", [p for p, _ in leaves()], ids=lambda p: " ".join(p))
def test_help_has_examples_and_json(path):
    from practiceplan.cli.app import app

    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and f"practiceplan {' '.join(path)}" in result.stdout
    assert "--json" in result.stdout


def test_usage_errors_exit_2(cli):
    assert cli("template", "import", ok=False).code == 2
    assert cli("template", "preview", "x.json", "--weeks", "0", ok=False).code == 2
    assert cli("template", "lint", "x.json", "--max-prompts", "11", ok=False).code == 2
    assert cli("template", "create", "--type", "lesson", ok=False).code == 2


def test_not_found_exit_3(cli):
    result = cli("template", "show", "nothing", ok=False)
    assert result.code == 3 and "no template matches 'nothing'" in result.stderr and "template list" in result.stderr
    assert cli("template", "import", "/nonexistent/file.json", ok=False).code == 3


def test_empty_listings(cli):
    assert cli("template", "list", "--json").json == {"templates": []}
    assert "No templates yet" in cli("template", "list").stdout
    assert cli("template", "gallery", "--json").json == {"templates": []}


def _module_level_imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_cryptography_only_in_signatures_and_only_lazily():
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        every = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        every |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        uses = {name for name in every if name.split(".")[0] == "cryptography"}
        if path.relative_to(SRC).as_posix() == "formats/templates/signatures.py":
            assert uses and not {n for n in _module_level_imports(tree) if n.startswith("cryptography")}
        else:
            assert not uses, path


def test_template_modules_keep_to_their_layers():
    for rel in ("domain/templates.py", "formats/templates/format.py", "domain/template_merge.py",
                "formats/templates/schema.py", "formats/templates/signatures.py", "services/templates.py",
                "store/templates.py"):
        tree = ast.parse((SRC / rel).read_text(encoding="utf-8"))
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        tops = {n.split(".")[0] for n in names}
        assert not tops & {"typer", "rich", "click"}, rel
        if not rel.startswith("store/"):
            assert not tops & {"sqlite3", "sqlite_utils"}, rel


@pytest.mark.parametrize("args", [["template", "--help"], ["template", "import", "--help"], ["today"]])
def test_template_commands_start_fast(tmp_path, args):
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['practiceplan', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('practiceplan', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('cryptography', 'jsonschema', 'sqlite_utils', 'dateparser') if m in sys.modules)\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": "Europe/Berlin", "PATH": "/usr/bin:/bin",
           "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z"}
    subprocess.run([sys.executable, "-m", "practiceplan", "plan", "list"], env=env, check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True)
    assert [x for x in result.stderr.splitlines() if x.startswith("HEAVY=")] == ["HEAVY="], result.stderr


def test_template_input_errors_carry_a_hint(cli):
    """Issue 10.13: exit-65 messages say what to do next."""
    for args in (["template", "create", "--title", "X", "--every", "daily", "--choices", "nonsense"],
                 ["template", "create"],
                 ["template", "keygen", "--name", "bad name!"]):
        result = cli(*args, ok=False)
        lines = result.stderr.splitlines()
        assert result.code == 65 and len(lines) == 2 and lines[1].startswith("hint: "), result
