"""Output modes: JSON documents and human text on stdout, messages on stderr.

No ANSI when stdout is not a TTY (unless ``FORCE_COLOR`` is set), when ``NO_COLOR`` is set, or with ``--json``
(which never touches Rich).
Text that came from someone else (titles, notes, template content) is passed through :func:`safe` and
rendered as ``rich.text.Text``, never interpolated into markup.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def safe(text: object, *, single_line: bool = True) -> str:
    """Make control characters (ESC, C0/C1, bidi overrides) visible as ``\\xNN`` / ``<U+202E>``."""
    value = "" if text is None else str(text)

    def visible(match: re.Match[str]) -> str:
        char = match.group()
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"<U+{ord(char):04X}>"

    value = _CONTROL.sub(visible, value)
    if single_line:
        value = value.replace("\n", "\\n").replace("\t", " ")
    return value


def is_terminal(stream: Any = None) -> bool:
    try:
        return bool((stream or sys.stdout).isatty())
    except (AttributeError, ValueError):
        return False


def color_enabled(stream: Any = None) -> bool:
    """Colour (and the Rich views) on a terminal; never with ``NO_COLOR``; always with ``FORCE_COLOR`` (any
    non-empty value, as https://force-color.org says), unless ``NO_COLOR`` is set too: NO_COLOR wins."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_terminal(stream)


def console(stderr: bool = False, record: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    colour = color_enabled(stream)
    return Console(
        record=record,
        file=stream,
        color_system="auto" if colour else None,
        force_terminal=colour,
        no_color=not colour,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=not colour,
    )


class Output:
    """Where a command's result goes, decided in one place: one JSON document with ``--json``; otherwise the
    human view on a terminal, or its plain-text twin (same words, no Rich, no ANSI) when stdout is a pipe.

    Every command that prints a result takes ``--json`` and hands its document to :meth:`show` or :meth:`done`,
    so the JSON and human forms cannot drift apart or be forgotten.
    """

    def __init__(self, json_: bool = False) -> None:
        self.json = json_

    def show(self, document: Any, human: Callable[[], None], plain: Callable[[], None] | None = None) -> None:
        """A read command's result: ``document`` as JSON, else ``human()`` (or ``plain()`` off a terminal)."""
        if self.json:
            emit_json(document)
        elif plain is not None and not color_enabled():
            plain()
        else:
            human()

    def done(self, document: Any, *lines: str) -> None:
        """A change's result: ``document`` as JSON, else the confirmation ``lines`` on stdout."""
        if self.json:
            emit_json(document)
            return
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()


DEFAULT_PAGER = "less -FRX"


class _TerminalBuffer(io.StringIO):
    """Collects what a view prints while it is being paged; it says it is a terminal so the view renders as it
    would on the screen (colour, widths)."""

    def isatty(self) -> bool:
        return True


@contextmanager
def paged(enabled: bool = True) -> Iterator[None]:
    """Page what the block writes to stdout through ``$PAGER`` (default ``less -FRX``) when stdout is a
    terminal, paging is ``enabled`` (``--no-pager`` turns it off) and the text is taller than the terminal.
    Never when stdout is not a terminal; ``PAGER=`` or ``PAGER=cat`` turn it off too."""
    if not enabled or not is_terminal(sys.stdout):
        yield
        return
    real, buffer = sys.stdout, _TerminalBuffer()
    sys.stdout = buffer
    try:
        yield
    finally:
        sys.stdout = real
        show_paged(buffer.getvalue(), real)


def show_paged(text: str, stream: Any) -> None:
    """Write ``text`` to ``stream`` (a terminal) through the pager when it does not fit on one screen."""
    import shlex
    import shutil
    import signal
    import subprocess

    command = os.environ.get("PAGER", DEFAULT_PAGER).strip()
    if text.count("\n") < shutil.get_terminal_size().lines or command in ("", "cat"):
        stream.write(text)
        stream.flush()
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")  # as git does: quit if one screen, keep colours, leave the text on screen
    interrupt = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the pager while it runs (as in git)
        subprocess.run(shlex.split(command), input=text.encode("utf-8", "replace"), env=env, check=False)
    except (OSError, ValueError):
        stream.write(text)
        stream.flush()
    finally:
        signal.signal(signal.SIGINT, interrupt)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def message(text: str) -> None:
    """A status line on stderr (never on stdout, which carries data)."""
    sys.stderr.write(safe(text, single_line=False) + "\n")


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A transient progress bar on stderr when it is a terminal; yields an update(done, total) callback."""
    if not (is_terminal(sys.stderr) and color_enabled(sys.stderr)):
        yield None
        return
    from rich.progress import Progress

    with Progress(console=console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
