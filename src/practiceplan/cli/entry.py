"""Console-script entry point.

The read commands scripts and status bars run often (`today`, `next`, `stats`, `forecast`, `occurrences`, with
their options and `--json`) skip Typer and Click (~35 ms to import and build) and call the same bodies the
Typer commands call (cli/views.py), through the same session construction and error guard (cli/run.py);
``__complete`` answers the completion scripts' requests for values (plan titles, session ids...). Any
command line this small parser is not sure of (`--help`, an unknown or repeated option, a value Typer would
reject) goes to the Typer app, which answers it exactly as before.
"""

from __future__ import annotations

import sys
from typing import Any

# command -> {option: (keyword, kind)}; every fast command also takes --json.
FAST_OPTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "today": {},
    "next": {},
    "stats": {"--plan": ("plan", "text"), "--from": ("from_", "text"), "--to": ("to", "text"),
              "--svg": ("svg", "path"), "--no-pager": ("no_pager", "flag")},
    "forecast": {"--days": ("days", "days"), "--plan": ("plan", "text"), "--svg": ("svg", "path")},
    "occurrences": {"--plan": ("plan", "text"), "--from": ("from_", "text"), "--to": ("to", "text"),
                    "--status": ("status", "status"), "--history": ("history", "text"),
                    "--no-pager": ("no_pager", "flag")},
}
FLAGS = ("--json", "--no-pager")
FAST_COMMANDS = tuple(FAST_OPTIONS)


def _value(kind: str, text: str) -> Any:
    """The option value as the Typer command would receive it, or None when Typer should judge it."""
    if kind == "days":
        try:
            number = int(text)
        except ValueError:
            return None
        return number if 1 <= number <= 366 else None
    if kind == "status":
        from practiceplan.cli.views import STATUSES

        return text if text in STATUSES else None
    if kind == "path":
        from pathlib import Path

        return Path(text) if text else None
    return text


def _split(args: list[str]) -> list[tuple[str, str | None]] | None:
    """``--opt value`` / ``--opt=value`` / ``--json`` pairs, or None for anything else."""
    pairs: list[tuple[str, str | None]] = []
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word in FLAGS:
            pairs.append((word, None))
        elif word.startswith("--") and "=" in word:
            name, _, value = word.partition("=")
            pairs.append((name, value))
        elif word.startswith("--") and rest and not rest[0].startswith("-"):
            pairs.append((word, rest.pop(0)))
        else:
            return None
    return pairs


def fast_form(argv: list[str]) -> tuple[str, str | None, bool, dict[str, Any]] | None:
    """(command, --db value, --json, keyword options) when the fast path can run ``argv`` exactly as Typer
    would; None otherwise."""
    db = None
    rest = list(argv)
    if rest[:1] == ["--db"] and len(rest) >= 2:
        db, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--db="):
        db, rest = rest[0][5:], rest[1:]
    if db == "":
        return None
    if not rest:
        return "today", db, False, {}  # `practiceplan` alone shows today
    if rest[0] not in FAST_OPTIONS:
        return None
    spec = FAST_OPTIONS[rest[0]]
    pairs = _split(rest[1:])
    names = [name for name, _ in pairs or []]
    if pairs is None or len(set(names)) != len(names):
        return None
    options: dict[str, Any] = {}
    for name, text in pairs:
        if name == "--json":
            continue
        if name not in spec or (text is None) != (spec[name][1] == "flag"):
            return None
        keyword, kind = spec[name]
        value = True if kind == "flag" else _value(kind, text)
        if value is None:
            return None
        options[keyword] = value
    return rest[0], db, "--json" in names, options


def complete(argv: list[str]) -> int:
    """``__complete SHELL KIND [PREFIX]``: the values the completion scripts offer on Tab, one per line, as the
    shell wants them (bash: the value; zsh: ``value:description``; fish: ``value<TAB>description``)."""
    if len(argv) not in (2, 3):
        return 2
    from practiceplan.services.completion import values

    shell, kind, prefix = argv[0], argv[1], argv[2] if len(argv) == 3 else ""
    if prefix.startswith("-") and "=" in prefix:
        prefix = prefix.partition("=")[2]  # --plan=Sca
    for value, description in values(kind, prefix):
        value, description = value.replace("\n", " "), description.replace("\n", " ")
        if shell == "zsh":
            line = value.replace("\\", "\\\\").replace(":", "\\:") + (f":{description}" if description else "")
        elif shell == "fish":
            line = value + (f"\t{description}" if description else "")
        else:
            line = value
        sys.stdout.write(line + "\n")
    return 0


def main() -> None:
    if sys.argv[1:2] == ["__complete"]:
        sys.exit(complete(sys.argv[2:]))
    form = fast_form(sys.argv[1:])
    if form is None:
        from practiceplan.cli.app import main as typer_main

        typer_main()
        return
    sys.exit(run_fast(*form))


def run_fast(command: str, db: str | None, json_: bool, options: dict[str, Any] | None = None) -> int:
    from practiceplan.cli import views
    from practiceplan.cli.run import guard, open_session, say_notices
    from practiceplan.render.output import Output

    body = {"today": views.today, "next": views.next_, "stats": views.stats, "forecast": views.forecast,
            "occurrences": views.occurrences}[command]
    session = open_session(db)
    try:
        return guard(lambda: body(session, Output(json_), **(options or {})))
    finally:
        say_notices(session)
        session.close()
