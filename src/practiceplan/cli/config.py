"""`practiceplan config ...`: where things live and the settings in config.toml."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from practiceplan.cli._common import Json, example, handle_errors, new_app, session
from practiceplan.render.output import Output

app = new_app("Show where data and config live, and read or change settings.")


def _settings(ctx: typer.Context) -> Any:
    return session(ctx).settings


@app.command("path", epilog=example("practiceplan config path", "practiceplan config path --json"))
@handle_errors
def path(ctx: typer.Context, json_: Json = False) -> None:
    """Print the database, data folder and config file locations."""
    s = _settings(ctx)
    paths = {"database": str(s.db_path), "dataDir": str(s.data_dir), "configFile": str(s.config_file)}

    def human() -> None:
        for key, value in (("database", paths["database"]), ("data dir", paths["dataDir"]), ("config", paths["configFile"])):
            typer.echo(f"{key + ':':<10} {value}")

    Output(json_).show(paths, human)


@app.command("show", epilog=example("practiceplan config show", "practiceplan config show --json"))
@handle_errors
def show(ctx: typer.Context, json_: Json = False) -> None:
    """Print every setting with its current value (the time zone as resolved)."""
    from practiceplan.settings import CONFIG_KEYS

    s = _settings(ctx)
    values = dict(s.config)
    values["timezone"] = s.zone_name

    def human() -> None:
        for key in CONFIG_KEYS:
            typer.echo(f"{key} = {values[key]}    # {CONFIG_KEYS[key][2]}")

    Output(json_).show(values, human)


@app.command("set", epilog=example("practiceplan config set timezone Europe/Berlin", "practiceplan config set daily_capacity 90"))
@handle_errors
def set_(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Setting name (see `config show`).")],
    value: Annotated[str, typer.Argument(help="New value.")],
) -> None:
    """Change one setting in config.toml (validated first; the file is replaced atomically)."""
    import json
    import os
    import tempfile
    import tomllib

    from practiceplan.errors import InvalidInputError
    from practiceplan.settings import CONFIG_KEYS, check_config_value

    s = _settings(ctx)
    if key not in CONFIG_KEYS:
        raise InvalidInputError(f"unknown setting '{key}'", hint="known: " + ", ".join(CONFIG_KEYS))
    checked = check_config_value(key, value)
    current: dict[str, Any] = {}
    if s.config_file.exists():
        try:
            current = tomllib.loads(s.config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"config file {s.config_file} is not valid TOML: {exc}") from None
    current[key] = checked
    lines = ["# practiceplan settings (see `practiceplan config show`)"]
    for name, item in current.items():
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            continue
        lines.append(f"{name} = {item}" if isinstance(item, int) else f"{name} = {json.dumps(item, ensure_ascii=False)}")
    s.config_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=s.config_file.parent, prefix=".config-", suffix=".toml")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, s.config_file)
    typer.echo(f"{key} = {checked}")
