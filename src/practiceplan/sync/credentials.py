"""Where the sync token of each remote lives: ``PRACTICEPLAN_TOKEN``, the OS keyring, or a private file.

* :func:`load` looks in that order: the environment variable ``PRACTICEPLAN_TOKEN`` (for every remote), the OS
  keyring (service ``practiceplan``, user name = the remote URL), then ``credentials.json`` in the config folder
  (``{url: token}``, mode 0600).
* :func:`save` stores in the keyring when the optional ``keyring`` package is installed, its backend works and
  ``PRACTICEPLAN_NO_KEYRING`` is not set; otherwise (or when the keyring fails: no backend, locked) in the file.
* :func:`delete` clears the keyring and the file; :func:`where` says which source holds the token.

The token itself is never in a message, an error or a repr. The file is created with mode 0600 from its first
byte (``fileio.write_atomic``: ``os.open(..., 0o600)`` then an atomic rename), its folder 0700 when missing.
``keyring`` is imported only here, inside the functions (never by ``today`` or ``--help``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from practiceplan.errors import InvalidInputError
from practiceplan.settings import CREDENTIALS_FILENAME, Settings

ENV_TOKEN = "PRACTICEPLAN_TOKEN"
ENV_NO_KEYRING = "PRACTICEPLAN_NO_KEYRING"
KEYRING_SERVICE = "practiceplan"
MAX_TOKEN_BYTES = 8192
Source = Literal["env", "keyring", "file"]


@dataclass(frozen=True, repr=False)
class Credential:
    token: str
    source: Source

    def __repr__(self) -> str:
        return f"Credential(source={self.source!r}, token=<hidden>)"


def check_token(token: str) -> str:
    """``token`` without surrounding whitespace, or InvalidInputError (exit 65) saying what is wrong with it
    (never the token): empty, spaces or control characters inside, not ASCII, 8 KB or longer."""
    value = (token or "").strip()
    if not value:
        raise InvalidInputError("the token is empty", hint="paste the whole token (it is not shown as you type)")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise InvalidInputError("the token contains spaces or control characters",
                                hint="paste the token alone, on one line")
    if not value.isascii():
        raise InvalidInputError("the token contains characters other than ASCII", hint="paste the token alone")
    if len(value.encode("utf-8")) >= MAX_TOKEN_BYTES:
        raise InvalidInputError("the token is 8 KB or longer", hint="paste the token alone")
    return value


def credentials_path(settings: Settings) -> Path:
    return settings.config_dir / CREDENTIALS_FILENAME


def describe(settings: Settings, source: str) -> str:
    """How a source is said to a person: ``env PRACTICEPLAN_TOKEN``, ``OS keyring``, ``file PATH (600)``."""
    if source == "env":
        return f"env {ENV_TOKEN}"
    if source == "keyring":
        return "OS keyring"
    path = credentials_path(settings)
    try:
        mode = f"{path.stat().st_mode & 0o777:o}"
    except OSError:
        mode = "missing"
    return f"file {path} ({mode})"


# ---------------------------------------------------------------------------------------------- the keyring

def _keyring(settings: Settings) -> Any | None:
    """The keyring module when it may be used: installed, not turned off, and with a working backend."""
    if settings.env.get(ENV_NO_KEYRING):
        return None
    try:
        import keyring
    except Exception:  # noqa: BLE001 - not installed, or broken on import: the file it is
        return None
    try:
        backend = keyring.get_keyring() if hasattr(keyring, "get_keyring") else None
    except Exception:  # noqa: BLE001
        return None
    if backend is not None:
        module = type(backend).__module__
        if module.endswith(".fail") or module.endswith(".null") or getattr(backend, "priority", 1) <= 0:
            return None  # keyring's "no backend" stand-ins: every call would fail
    return keyring


def _keyring_get(settings: Settings, url: str) -> str | None:
    keyring = _keyring(settings)
    if keyring is None:
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, url)
    except Exception:  # noqa: BLE001 - a locked or failing keyring: look in the file
        return None
    return value if isinstance(value, str) and value.strip() else None


def _keyring_set(settings: Settings, url: str, token: str) -> bool:
    keyring = _keyring(settings)
    if keyring is None:
        return False
    try:
        keyring.set_password(KEYRING_SERVICE, url, token)
        return keyring.get_password(KEYRING_SERVICE, url) == token
    except Exception:  # noqa: BLE001 - a locked or failing keyring: the file takes it
        return False


def _keyring_delete(settings: Settings, url: str) -> bool:
    if _keyring_get(settings, url) is None:
        return False
    keyring = _keyring(settings)
    try:
        keyring.delete_password(KEYRING_SERVICE, url)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001
        return False
    return True


# ---------------------------------------------------------------------------------------------- the file

def _read_file(settings: Settings) -> dict[str, str]:
    path = credentials_path(settings)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}",
                                hint="check its permissions (it should be yours, mode 600)") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path} is not a JSON object of remote URL to token",
                                hint=f"delete {path} and run `practiceplan login` again")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _write_file(settings: Settings, tokens: dict[str, str]) -> None:
    from practiceplan.fileio import write_atomic

    path = credentials_path(settings)
    if not tokens:
        path.unlink(missing_ok=True)
        return
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)  # whatever the umask
    data = (json.dumps(tokens, indent=2, sort_keys=True) + "\n").encode("utf-8")
    write_atomic(path, data, mode=0o600, replace=True, as_input_error=True,
                 hint=f"check that {path.parent} is yours and writable")


# ---------------------------------------------------------------------------------------------- the API

def load(settings: Settings, url: str) -> Credential | None:
    """The token to use for ``url``: ``PRACTICEPLAN_TOKEN``, else the keyring, else the file; None if none."""
    env = (settings.env.get(ENV_TOKEN) or "").strip()
    if env:
        try:
            return Credential(check_token(env), "env")
        except InvalidInputError as error:
            raise InvalidInputError(f"{ENV_TOKEN} is not a usable token: {error.message}",
                                    hint=f"fix or unset {ENV_TOKEN}") from None
    from_keyring = _keyring_get(settings, url)
    if from_keyring is not None:
        return Credential(from_keyring.strip(), "keyring")
    from_file = _read_file(settings).get(url)
    if from_file and from_file.strip():
        return Credential(from_file.strip(), "file")
    return None


def save(settings: Settings, url: str, token: str) -> str:
    """Store ``token`` for ``url``; returns the source used (``keyring`` or ``file``). Storing in the keyring
    removes an older copy from the file, so the token lives in one place."""
    token = check_token(token)
    if _keyring_set(settings, url, token):
        tokens = _read_file(settings) if credentials_path(settings).exists() else {}
        if url in tokens:
            del tokens[url]
            _write_file(settings, tokens)
        return "keyring"
    tokens = _read_file(settings)
    tokens[url] = token
    _write_file(settings, tokens)
    return "file"


def delete(settings: Settings, url: str) -> list[str]:
    """Remove the token of ``url`` from the keyring and the file; returns the sources cleared (the environment
    variable cannot be cleared from here)."""
    cleared = []
    if _keyring_delete(settings, url):
        cleared.append("keyring")
    if credentials_path(settings).exists():
        tokens = _read_file(settings)
        if url in tokens:
            del tokens[url]
            _write_file(settings, tokens)
            cleared.append("file")
    return cleared


def where(settings: Settings, url: str) -> str | None:
    """Which source holds the token for ``url`` (``env``, ``keyring`` or ``file``), never the token."""
    found = load(settings, url)
    return found.source if found else None
