"""The one runner of a user's command: the ``dip_hook`` setting and ``remind --notify-cmd``.

The command is split into words with POSIX shell rules (``shlex``) and run directly, never through a shell,
so text that came from someone else (a plan title) can never become a command: ``{name}`` placeholders are
replaced inside the words after the split, in one pass. Details go in ``PRACTICEPLAN_*`` environment
variables (on top of the caller's environment) and as one JSON document on stdin; the hook's stdout is
discarded, and a hook that hangs is killed after ``timeout`` seconds. A hook never fails the command that
runs it: :func:`run` returns an error text for a warning, or None.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Mapping
from typing import Any


def split(command: str) -> list[str]:
    """The words of ``command`` (POSIX shell rules, no shell). ValueError when a quote is not closed."""
    return shlex.split(command)


def substitute(word: str, placeholders: Mapping[str, str]) -> str:
    """``word`` with each ``{name}`` of ``placeholders`` replaced by its value; a value is never searched for
    placeholders again, and unknown ``{names}`` stay as they are."""
    if not placeholders:
        return word
    pattern = re.compile("{(" + "|".join(re.escape(name) for name in placeholders) + ")}")
    return pattern.sub(lambda match: placeholders[match.group(1)], word)


def run(
    command: str,
    *,
    env: Mapping[str, str],
    details: Any,
    timeout: float,
    placeholders: Mapping[str, str] | None = None,
    keep_stderr: bool = True,
    check_status: bool = True,
) -> str | None:
    """Run ``command`` once with ``env`` added to the environment and ``details`` as JSON on stdin.

    ``keep_stderr`` False discards what the hook writes to stderr too; ``check_status`` False accepts any
    exit status. Returns None when the hook ran (and exited 0), else an error text a person can read:
    ``<program>: <reason>`` (not found, not executable, "timed out after 30 s and was stopped"),
    ``<program> exited with status N``, or why the command could not be split into words.
    """
    try:
        words = split(command)
    except ValueError as exc:
        return f"cannot split the command into words: {exc}"
    if not words:
        return "the command is empty"
    argv = [substitute(word, placeholders or {}) for word in words]
    try:
        done = subprocess.run(
            argv,
            input=json.dumps(details, ensure_ascii=False),
            text=True,
            env={**os.environ, **env},
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=None if keep_stderr else subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"{argv[0]}: timed out after {timeout:g} s and was stopped"
    except OSError as exc:
        return f"{argv[0]}: {_os_reason(exc)}"
    except ValueError:  # e.g. a NUL character in a word
        return f"{argv[0]}: cannot be run (a word of the command contains a character a program cannot take)"
    if check_status and done.returncode != 0:
        return f"{argv[0]} exited with status {done.returncode}"
    return None


def _os_reason(exc: OSError) -> str:
    """Why a program could not start, as a person would say it (no errno numbers, no Python reprs)."""
    if isinstance(exc, FileNotFoundError):
        return "No such file or directory (is the program installed and on PATH?)"
    if isinstance(exc, PermissionError):
        return "permission denied (is it executable?)"
    return exc.strerror or type(exc).__name__
