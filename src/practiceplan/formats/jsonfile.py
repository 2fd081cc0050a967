"""Reading JSON files users give us: size-capped, UTF-8 (a BOM is tolerated), strict.

Strict means NaN/Infinity and duplicate keys are refused, so a file never means two things. Used by
`log import` (a JSON array or JSON lines) and `import json` (one document).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from practiceplan.errors import InvalidInputError, NotFoundError

MAX_IMPORT_BYTES = 512 * 1024 * 1024


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key '{key}'")
            seen.add(key)
    return result


STRICT = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_no_duplicates)


def read_text(path: Path) -> str:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise InvalidInputError(f"{path} is larger than {MAX_IMPORT_BYTES // 2**20} MiB")
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{path} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None


def read_json_document(path: Path) -> Any:
    """One JSON document."""
    try:
        return STRICT.decode(read_text(path))
    except ValueError as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}; nothing was imported") from None


def read_json_items(path: Path) -> list[Any]:
    """A JSON array, or JSON lines (one value per line)."""
    text = read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            return STRICT.decode(stripped)
        except ValueError as exc:
            raise InvalidInputError(f"{path} is not valid JSON: {exc}") from None
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(STRICT.decode(line))
        except ValueError as exc:
            raise InvalidInputError(f"{path} line {number} is not valid JSON: {exc}") from None
    return items
