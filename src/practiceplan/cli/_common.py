"""Shared CLI plumbing: error mapping, the session of a command, option helpers, examples in help."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from practiceplan.cli._report import report
from practiceplan.errors import PracticePlanError

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
    """Turn user errors into one line on stderr (plus a hint) and their documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PracticePlanError as error:
            report(error)
            raise typer.Exit(int(error.exit_code)) from None
        except KeyboardInterrupt:
            sys.stderr.write("practiceplan: interrupted\n")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # stdout closed early (e.g. `| head`): not an error for the user
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None

    return wrapper  # type: ignore[return-value]


def session(ctx: typer.Context) -> Session:
    """The session for this invocation (settings come from the root callback's ``--db``); closed on exit."""
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    root = ctx.find_root()
    settings = root.obj if isinstance(root.obj, Settings) else Settings()
    instance = Session(settings)
    ctx.call_on_close(instance.close)
    return instance


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
