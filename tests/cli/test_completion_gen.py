"""Tests for the static shell-completion generator (practiceplan.cli.completion)."""

from __future__ import annotations

import enum
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional

import pytest
import typer

from practiceplan.cli.completion import SHELLS, generate

PROG = "prog"


class Flex(str, enum.Enum):
    fixed = "fixed"
    same_day = "same-day"
    anytime = "anytime"
    weekly = "weekly"


class Kind(str, enum.Enum):
    practice = "practice"
    lesson = "lesson"


def build_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    plan = typer.Typer(help="Manage practice plans.")
    template = typer.Typer(help="Work with templates.")
    trust = typer.Typer(help="Trusted template sources.")
    app.add_typer(plan, name="plan")
    app.add_typer(template, name="template")
    template.add_typer(trust, name="trust")

    @app.callback()
    def main(
        db: Optional[Path] = typer.Option(None, "--db", help="Path to the 'database' file."),
        version: bool = typer.Option(False, "--version", "-V", help="Show the version."),
    ) -> None:
        """Practice planner."""

    @plan.command("add")
    def plan_add(
        name: str = typer.Argument(..., help="Plan name."),
        flex: Flex = typer.Option(Flex.fixed, "--flex", "-f", help="How flexible the plan is."),
        minutes: int = typer.Option(30, "--minutes", help="Minutes per session."),
        piece: List[str] = typer.Option([], "--piece", help="A piece (repeatable)."),
        secret_opt: bool = typer.Option(False, "--secret-opt", hidden=True),
    ) -> None:
        """Add a plan.

        Longer description that must not leak into completions."""

    @plan.command("list")
    def plan_list() -> None:
        """List plans."""

    @trust.command("add")
    def trust_add(source: Path = typer.Argument(..., help="Template file.")) -> None:
        """Trust a template source."""

    @app.command("today")
    def today(as_json: bool = typer.Option(False, "--json", help='Emit "JSON".')) -> None:
        """Show today's plan."""

    @app.command("debug-dump", hidden=True)
    def debug_dump() -> None:
        """Hidden helper."""

    return app


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return build_app()


@pytest.fixture(scope="module")
def scripts(app) -> dict[str, str]:
    return {shell: generate(app, shell, PROG) for shell in SHELLS}


# ---------------------------------------------------------------- content


@pytest.mark.parametrize("shell", SHELLS)
def test_header_and_determinism(app, scripts, shell):
    script = scripts[shell]
    assert f"`{PROG} completion {shell}`" in "\n".join(script.splitlines()[:3])
    assert "DO NOT EDIT BY HAND" in script
    assert generate(app, shell, PROG) == script
    assert generate(typer.main.get_command(app), shell, PROG) == script


@pytest.mark.parametrize("shell", SHELLS)
def test_visible_commands_options_and_choices_present(scripts, shell):
    script = scripts[shell]
    for word in ("plan", "template", "trust", "today", "add", "list"):
        assert word in script
    for opt in ("--db", "--version", "--help", "--flex", "--minutes", "--piece", "--json"):
        assert (opt if shell != "fish" else f"-l {opt[2:]}") in script
    for choice in (f.value for f in Flex):
        assert choice in script


@pytest.mark.parametrize("shell", SHELLS)
def test_hidden_things_left_out(scripts, shell):
    assert "debug-dump" not in scripts[shell]
    assert "secret-opt" not in scripts[shell]
    assert "Longer description" not in scripts[shell]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_descriptions_present(scripts, shell):
    script = scripts[shell]
    for desc in ("Manage practice plans.", "Add a plan.", "Trusted template sources.",
                 "How flexible the plan is.", "Show the version."):
        assert desc in script


def test_fish_lines(scripts):
    fish = scripts["fish"]
    assert "complete -c prog -n '__prog_at plan add' -l flex -s f -x -a 'fixed same-day anytime weekly'" in fish
    assert "complete -c prog -n '__prog_at' -l db -r -F -d 'Path to the \\'database\\' file.'" in fish
    assert "complete -c prog -n '__prog_at template trust add' -F" in fish
    assert "complete -c prog -n '__prog_at' -a 'today' -d 'Show today\\'s plan.'" in fish


def test_zsh_starts_with_compdef(scripts):
    assert scripts["zsh"].startswith("#compdef prog\n")
    assert "'--db:Path to the '\\''database'\\'' file.'" in scripts["zsh"]


def test_unknown_shell_rejected(app):
    with pytest.raises(ValueError):
        generate(app, "powershell", PROG)


def test_prog_name_with_dash_gives_valid_function_names(app):
    script = generate(app, "bash", "practice-plan")
    assert "_practice_plan()" in script
    assert "complete -F _practice_plan 'practice-plan'" in script


# ---------------------------------------------------------------- real bash

BASH = shutil.which("bash")


def bash_complete(script: str, words: list[str], tmp_path: Path, files: tuple[str, ...] = ()) -> list[str]:
    """Source `script` in bash, simulate Tab on the last element of `words`, return COMPREPLY."""
    for name in files:
        (tmp_path / name).write_text("")
    script_file = tmp_path / "prog.bash"
    script_file.write_text(script)
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    driver = (
        f"source {script_file} || exit 9\n"
        f"COMP_WORDS=({quoted})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        f'COMP_LINE="${{COMP_WORDS[*]}}"\n'
        "COMP_POINT=${#COMP_LINE}\n"
        "_prog\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run([BASH, "--norc", "--noprofile", "-c", driver], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


pytestmark_bash = pytest.mark.skipif(BASH is None, reason="bash not installed")

BASH_CASES = [
    (["prog", ""], {"plan", "template", "today"}),
    (["prog", "pl"], {"plan"}),
    (["prog", "-"], {"--db", "--version", "-V", "--help"}),
    (["prog", "--db", "x.db", ""], {"plan", "template", "today"}),
    (["prog", "plan", ""], {"add", "list"}),
    (["prog", "plan", "add", "--flex", ""], {"fixed", "same-day", "anytime", "weekly"}),
    (["prog", "plan", "add", "-f", "s"], {"same-day"}),
    (["prog", "plan", "add", "--flex", "=", "w"], {"weekly"}),
    (["prog", "plan", "add", "--flex", "="], {"fixed", "same-day", "anytime", "weekly"}),
    (["prog", "plan", "add", "--fl"], {"--flex"}),
    (["prog", "plan", "add", "--minutes", "10", "--p"], {"--piece"}),
    (["prog", "plan", "add", "--minutes", ""], set()),
    (["prog", "template", "trust", ""], {"add"}),
    (["prog", "template", "trust", "add", "--"], {"--help"}),
    (["prog", "today", ""], {"--json", "--help"}),
    (["prog", "debug"], set()),
]


@pytestmark_bash
@pytest.mark.parametrize("words,expected", BASH_CASES, ids=[" ".join(w) + "<TAB>" for w, _ in BASH_CASES])
def test_bash_completion(scripts, tmp_path, words, expected):
    assert set(bash_complete(scripts["bash"], words, tmp_path)) == expected


@pytestmark_bash
def test_bash_path_values_complete_files(scripts, tmp_path):
    files = ("notes.db", "other.txt")
    assert set(bash_complete(scripts["bash"], ["prog", "--db", "no"], tmp_path, files)) == {"notes.db"}
    got = bash_complete(scripts["bash"], ["prog", "template", "trust", "add", "o"], tmp_path, files)
    assert set(got) == {"other.txt"}


@pytestmark_bash
def test_bash_syntax(scripts, tmp_path):
    (tmp_path / "s.bash").write_text(scripts["bash"])
    assert subprocess.run([BASH, "-n", str(tmp_path / "s.bash")], capture_output=True).returncode == 0


# ---------------------------------------------------------------- zsh / fish syntax


def test_zsh_syntax(scripts, tmp_path):
    zsh = shutil.which("zsh")
    if zsh is None:
        pytest.skip("zsh not installed")
    (tmp_path / "_prog").write_text(scripts["zsh"])
    result = subprocess.run([zsh, "-n", str(tmp_path / "_prog")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_fish_syntax(scripts, tmp_path):
    fish = shutil.which("fish")
    if fish is None:
        pytest.skip("fish not installed")
    (tmp_path / "prog.fish").write_text(scripts["fish"])
    result = subprocess.run([fish, "--no-execute", str(tmp_path / "prog.fish")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytestmark_bash
def test_bash_positional_choices_and_typer_command_input(tmp_path):
    app = typer.Typer(add_completion=False)

    @app.command()
    def log(kind: Kind = typer.Argument(..., help="Entry kind.")) -> None:
        """Log something."""

    @app.command()
    def other() -> None:
        """Another command, so `log` stays a subcommand."""

    script = generate(typer.main.get_command(app), "bash", PROG)
    assert set(bash_complete(script, ["prog", "log", ""], tmp_path)) == {"practice", "lesson"}
    assert set(bash_complete(script, ["prog", "log", "-"], tmp_path)) == {"--help"}
