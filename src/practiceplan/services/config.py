"""Config: where things live, the settings in effect, and changing one setting in config.toml.

``set`` rewrites the whole file from what it holds now (every key and every value type survive: booleans,
floats, lists, tables, keys of newer versions), with the one key changed, through the atomic writer.
A :class:`~practiceplan.settings.Settings` that has already read the file keeps its values; a new one
reads the change.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from practiceplan.errors import InvalidInputError
from practiceplan.settings import CONFIG_KEYS, check_config_value

if TYPE_CHECKING:
    from practiceplan.services.session import Session

HEADER = "# practiceplan settings (see `practiceplan config show`)\n"
FILE_MODE = 0o600  # what config.toml has always been written with


class Config:
    def __init__(self, session: Session) -> None:
        self.s = session

    def paths(self) -> dict[str, str]:
        """The database, the data folder and the config file."""
        settings = self.s.settings
        return {"database": str(settings.db_path), "dataDir": str(settings.data_dir),
                "configFile": str(settings.config_file)}

    def values(self) -> dict[str, Any]:
        """Every setting with its value in effect (the time zone as resolved)."""
        values = dict(self.s.settings.config)
        values["timezone"] = self.s.settings.zone_name
        return values

    def set(self, key: str, value: Any) -> Any:
        """Validate ``value`` for ``key`` and write it into config.toml. Returns the value as written."""
        if key not in CONFIG_KEYS:
            raise InvalidInputError(f"unknown setting '{key}'", hint="known: " + ", ".join(CONFIG_KEYS))
        checked = check_config_value(key, value)
        path = self.s.settings.config_file
        document = _read(path)
        document[key] = checked
        import tomli_w

        from practiceplan.fileio import write_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (HEADER + tomli_w.dumps(document)).encode("utf-8"), mode=FILE_MODE, replace=True)
        return checked


def _read(path: Path) -> dict[str, Any]:
    """The TOML document in ``path`` ({} when there is none); a damaged file is refused, never overwritten."""
    if not path.exists():
        return {}
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"config file {path} is not valid TOML: {exc}") from None
