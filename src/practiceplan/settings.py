"""Paths and configuration, resolved once per invocation.

Precedence: command-line flag > environment variable > config file > platform default.

* ``PRACTICEPLAN_HOME`` relocates data *and* config into one folder (tests and portable installs).
* ``--db PATH`` / ``PRACTICEPLAN_DB`` picks the database file.
* ``PRACTICEPLAN_TZ`` (or ``timezone`` in the config file) sets the user's zone; otherwise ``TZ`` if it
  names an IANA zone, then ``/etc/localtime``, then UTC.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from practiceplan.errors import InvalidInputError

APP_NAME = "practiceplan"
DB_FILENAME = "practiceplan.db"
CONFIG_FILENAME = "config.toml"
CREDENTIALS_FILENAME = "credentials.json"  # sync tokens (sync/credentials.py); `doctor` checks its mode
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# key -> (default, type, help)
CONFIG_KEYS: dict[str, tuple[Any, type, str]] = {
    "timezone": ("", str, "your IANA time zone, e.g. Europe/Berlin (default: the system zone)"),
    "horizon_days": (90, int, "how many days ahead occurrences are materialised"),
    "undo_minutes": (15, int, "how long a check-in can be undone with `uncheck`"),
    "week_start": ("monday", str, "first day of the week for weekly windows and buckets"),
    "instrument": ("piano", str, "instrument used for logbook entries when a plan names none"),
    "upcoming": (5, int, "how many upcoming sessions `today` lists"),
    "daily_capacity": (60, int, "minutes of practice you can plan per day (forecast, cascades)"),
    "weekday_capacity": ("", str, "per-weekday capacity overrides, e.g. 'sa=120,su=0'"),
    "adherence_alert": (60, int, "record an event (and run dip_hook) when a plan's weekly adherence drops below this %"),
    "dip_hook": ("", str, "command run on an adherence dip, e.g. 'notify-send' (details in env and on stdin)"),
    "remind_within": (30, int, "minutes before a session that `remind` notifies of it"),
    "remind_grace": (120, int, "reminders missed by more than this many minutes are summarised in one message"),
    "reminder_minutes": (15, int, "alarm this many minutes before each session in `export ics` (0: no alarm)"),
    "backup_keep": (5, int, "how many backup generations `backup` and `restore` keep in the backups folder"),
    "events_keep": (10000, int, "the event log keeps at most this many events (the oldest go when one is added)"),
    "events_days": (180, int, "the event log keeps events for this many days (pruned when one is added)"),
}


def parse_zone(name: str, source: str) -> ZoneInfo:
    try:
        if not name or name.startswith("/") or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            f"unknown time zone '{name}' (from {source})",
            hint="use an IANA name such as Europe/Berlin or America/New_York",
        ) from None


def _system_zone() -> ZoneInfo:
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        target = os.path.realpath("/etc/localtime")
        marker = "zoneinfo/"
        if marker in target:
            return ZoneInfo(target.split(marker, 1)[1])
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    return ZoneInfo("UTC")


@dataclass
class Settings:
    db_flag: str | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    create: bool = False  # --create: make the folder of an explicit --db / PRACTICEPLAN_DB path

    @property
    def creates_folder(self) -> bool:
        """Only the default location (the data dir, or PRACTICEPLAN_HOME) is created silently; the folder of a
        path given with --db or PRACTICEPLAN_DB must exist unless --create was asked for (a mistyped path must
        not look like an empty database)."""
        return self.create or not (self.db_flag or self.env.get("PRACTICEPLAN_DB"))

    @cached_property
    def home(self) -> Path | None:
        home = self.env.get("PRACTICEPLAN_HOME")
        return Path(home).expanduser() if home else None

    @cached_property
    def data_dir(self) -> Path:
        if self.home:
            return self.home
        import platformdirs

        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))

    @cached_property
    def config_dir(self) -> Path:
        if self.home:
            return self.home
        import platformdirs

        return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))

    @property
    def config_file(self) -> Path:
        return self.config_dir / CONFIG_FILENAME

    @cached_property
    def db_path(self) -> Path:
        if self.db_flag:
            return Path(self.db_flag).expanduser()
        env_db = self.env.get("PRACTICEPLAN_DB")
        if env_db:
            return Path(env_db).expanduser()
        return self.data_dir / DB_FILENAME

    @cached_property
    def config(self) -> dict[str, Any]:
        values = {key: spec[0] for key, spec in CONFIG_KEYS.items()}
        path = self.config_file
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return values
        except OSError as exc:
            raise InvalidInputError(f"cannot read config file {path}: {exc.strerror}") from None
        import tomllib

        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInputError(
                f"config file {path} is not valid TOML: {exc}", hint="fix or delete the file"
            ) from None
        for key, value in data.items():
            if key not in CONFIG_KEYS:
                continue  # unknown keys are tolerated (newer versions may add some)
            values[key] = check_config_value(key, value, source=str(path))
        return values

    @cached_property
    def zone(self) -> ZoneInfo:
        env_tz = self.env.get("PRACTICEPLAN_TZ")
        if env_tz:
            return parse_zone(env_tz, "PRACTICEPLAN_TZ")
        if self.config["timezone"]:
            return parse_zone(self.config["timezone"], str(self.config_file))
        return _system_zone()

    @property
    def zone_name(self) -> str:
        return self.zone.key

    @property
    def week_start(self) -> int:
        return WEEKDAYS.index(self.config["week_start"])


def check_config_value(key: str, value: Any, source: str = "command line") -> Any:
    """Validate one config value; returns it converted to its type."""
    default, kind, _help = CONFIG_KEYS[key]
    if kind is int:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"config {key} must be a whole number (from {source})",
                                    hint=f"e.g. practiceplan config set {key} 30") from None
        limits = {"horizon_days": (1, 3660), "undo_minutes": (0, 1440), "upcoming": (0, 100),
                  "daily_capacity": (0, 1440), "adherence_alert": (0, 100),
                  "remind_within": (0, 1440), "remind_grace": (0, 10080), "reminder_minutes": (0, 1440),
                  "backup_keep": (1, 1000),
                  # a dip is recorded once per plan per week: the log must remember this week's dips
                  "events_keep": (100, 10**7), "events_days": (8, 36500)}
        low, high = limits.get(key, (0, 10**6))
        if not low <= number <= high:
            raise InvalidInputError(f"config {key} must be between {low} and {high} (from {source})",
                                    hint=f"give a number from {low} to {high}")
        return number
    if not isinstance(value, str):
        raise InvalidInputError(f"config {key} must be a string (from {source})", hint="quote it in the config file")
    if key == "timezone" and value:
        parse_zone(value, source)
    if key == "week_start":
        value = value.lower()
        if value not in WEEKDAYS:
            raise InvalidInputError(f"config week_start must be a weekday name, not '{value}'",
                                    hint="e.g. practiceplan config set week_start sunday")
    if key == "weekday_capacity" and value:
        parse_weekday_capacity(value)
    if key == "instrument":
        value = value.strip().lower()
        if not value:
            raise InvalidInputError("config instrument must not be empty",
                                    hint="e.g. practiceplan config set instrument violin")
    return value


def parse_weekday_capacity(text: str) -> dict[int, int]:
    """``"sa=120,su=0"`` -> {5: 120, 6: 0} (0 = Monday)."""
    result: dict[int, int] = {}
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        day, sep, minutes = part.partition("=")
        names = [d[:2] for d in WEEKDAYS]
        if not sep or day.lower()[:2] not in names or not minutes.isdigit() or int(minutes) > 1440:
            raise InvalidInputError(f"weekday_capacity '{text}' must look like 'sa=120,su=0' (minutes 0-1440)",
                                    hint="two-letter weekdays with minutes, separated by commas")
        result[names.index(day.lower()[:2])] = int(minutes)
    return result
