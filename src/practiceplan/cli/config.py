"""`practiceplan config ...`: where things live and the settings in config.toml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from practiceplan.cli._common import Json, example, handle_errors, new_app, session
from practiceplan.render.output import Output

if TYPE_CHECKING:
    from practiceplan.services.config import Config

app = new_app("Show where data and config live, and read or change settings.")


def _config(ctx: typer.Context) -> Config:
    return session(ctx).config


@app.command("path", epilog=example("practiceplan config path", "practiceplan config path --json"))
@handle_errors
def path(ctx: typer.Context, json_: Json = False) -> None:
    """Print the database, data folder and config file locations."""
    paths = _config(ctx).paths()

    def human() -> None:
        for key, value in (("database", paths["database"]), ("data dir", paths["dataDir"]), ("config", paths["configFile"])):
            typer.echo(f"{key + ':':<10} {value}")

    Output(json_).show(paths, human)


@app.command("show", epilog=example("practiceplan config show", "practiceplan config show --json"))
@handle_errors
def show(ctx: typer.Context, json_: Json = False) -> None:
    """Print every setting with its current value (the time zone as resolved)."""
    from practiceplan.settings import CONFIG_KEYS

    values = _config(ctx).values()

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
    checked = _config(ctx).set(key, value)
    typer.echo(f"{key} = {checked}")
