"""Shared CLI plumbing: the error guard and session of a command (from cli/run.py), the --json option, option helpers, examples in help."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from practiceplan.cli.run import guard, open_session, say_notices

if TYPE_CHECKING:
    from practiceplan.services.session import Session

F = TypeVar("F", bound=Callable[..., Any])


def new_app(help_text: str, **kwargs: Any) -> typer.Typer:
    return typer.Typer(
        help=help_text,
        rich_markup_mode=None,  # plain, fast help; Rich is for data views
        add_completion=False,
        no_args_is_help=True,
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


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
