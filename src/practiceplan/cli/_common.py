"""Shared CLI plumbing: the error guard and session of a command (from cli/run.py), the --json option, option helpers, examples in help."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from practiceplan.cli.run import guard, open_session, say_notices

if TYPE_CHECKING:
    from practiceplan.services.session import Session

F = TypeVar("F", bound=Callable[..., Any])


def summary(text: str | None) -> str:
    """The first clause of a help text, whole (never cut with "..."): up to its first full stop, colon, semicolon
    or parenthesis."""
    paragraph = " ".join((text or "").split("\f")[0].strip().split("\n\n")[0].replace("\b", "").split())
    for stop in (". ", ": ", "; ", " ("):
        paragraph = paragraph.split(stop)[0]
    return paragraph.rstrip(".")


class Command(TyperCommand):
    """A command whose usage line reads ``TITLE``, not Typer's ``{TITLE}``, for a required argument."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


class Group(TyperGroup):
    """A command group whose help lists each command with its whole first sentence, in ``SECTIONS`` by task
    when the group has them (commands in no section come last, under "Other")."""

    SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def sections(self, ctx: Any) -> list[tuple[str, list[tuple[str, str]]]]:
        visible = {name: cmd for name in self.list_commands(ctx)
                   if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden}
        result = []
        for title, entries in self.SECTIONS:
            rows = [(name, text) for name, text in entries if name in visible]
            if rows:
                result.append((title, rows))
        placed = {name for _, entries in self.SECTIONS for name, _ in entries}
        rest = [(name, summary(cmd.short_help or cmd.help)) for name, cmd in visible.items() if name not in placed]
        if rest:
            result.append(("Other commands" if self.SECTIONS else "Commands", rest))
        return result

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        sections = self.sections(ctx)
        width = max((len(name) for _, rows in sections for name, _ in rows), default=0)
        for title, rows in sections:
            with formatter.section(title):
                formatter.write_dl([(name.ljust(width), text) for name, text in rows])


class App(typer.Typer):
    """A Typer app whose commands are :class:`Command` (usage lines without braces)."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


def new_app(help_text: str, group: type[Group] = Group, **kwargs: Any) -> typer.Typer:
    return App(
        help=help_text,
        cls=group,
        rich_markup_mode=None,  # plain, fast help; Rich is for data views
        add_completion=False,
        no_args_is_help=kwargs.pop("no_args_is_help", True),
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        **kwargs,
    )


def example(*lines: str) -> str:
    """An epilog listing examples (``\\b`` keeps click from re-wrapping them)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def handle_errors(fn: F) -> F:
    """Run the command through the one error guard (cli/run.py): user errors become one line on stderr (plus
    a hint) and their documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        code = guard(lambda: fn(*args, **kwargs), passthrough=(typer.Exit, typer.Abort))
        if code:
            raise typer.Exit(code)

    return wrapper  # type: ignore[return-value]


def session(ctx: typer.Context) -> Session:
    """The session for this invocation (``--db`` from the root callback); closed when the command ends."""
    root = ctx.find_root()
    options = root.obj if isinstance(root.obj, dict) else {}
    instance = open_session(options.get("db"), create=bool(options.get("create")))
    ctx.call_on_close(instance.close)
    ctx.call_on_close(lambda: say_notices(instance))  # runs first (close callbacks run last-in, first-out)
    return instance


Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
PlanOpt = Annotated[Optional[str], typer.Option(
    "--plan", help="Only this plan (id, id prefix or the start of its title).", metavar="PLAN")]
NoPager = Annotated[bool, typer.Option("--no-pager", help="Print long output straight out, not through $PAGER.")]


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
