"""`practiceplan remote set|show|unset`, `login`, `logout`, `auth status`: the sync server of this database and
the token to reach it. The token is never an argument and never printed (only where it is kept)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from practiceplan.cli._common import Json, example, handle_errors, new_app, session, stdin_is_tty
from practiceplan.render.output import Output, safe

if TYPE_CHECKING:
    from practiceplan.services.remote import Remote

remote_app = new_app("Set, show or forget the sync server of this database.")
auth_app = new_app("See how you are logged in to the sync server.")
LOGIN_EXAMPLE = "practiceplan login"


def register(app: typer.Typer) -> None:
    app.add_typer(remote_app, name="remote")
    app.command("login", epilog=example(
        "practiceplan login", "pass show practiceplan | practiceplan login --token-stdin",
        "practiceplan login --no-verify",
    ))(login)
    app.command("logout", epilog=example("practiceplan logout"))(logout)
    app.add_typer(auth_app, name="auth")


def _remote(ctx: typer.Context) -> Remote:
    return session(ctx).remote


def _token_line(token: dict[str, str] | None) -> str:
    return f"token:     {safe(token['where'])}" if token else "token:     none stored (run `practiceplan login`)"


@remote_app.command("set", epilog=example("practiceplan remote set https://sync.example.com",
                                          "practiceplan remote set http://127.0.0.1:8765"))
@handle_errors
def remote_set(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The server's base URL: https://..., or http:// on this computer.")],
    json_: Json = False,
) -> None:
    """Make URL the sync server of this database (HTTPS required, except for localhost, 127.0.0.1 and ::1)."""
    result = _remote(ctx).set(url)
    lines = [f"Remote set to {safe(result['remote'])}"]
    if not result["token"]:
        lines.append("Next: practiceplan login")
    Output(json_).done(result, *lines)


@remote_app.command("show", epilog=example("practiceplan remote show", "practiceplan remote show --json"))
@handle_errors
def remote_show(ctx: typer.Context, json_: Json = False) -> None:
    """Print the sync server, this device's id and where the token is kept (never the token)."""
    result = _remote(ctx).show()

    def human() -> None:
        if not result["remote"]:
            typer.echo("No sync remote is set. Set one with: practiceplan remote set URL")
            return
        typer.echo(f"remote:    {safe(result['remote'])}")
        typer.echo(f"device id: {result['deviceId'] or '(made on first use)'}")
        typer.echo(_token_line(result["token"]))

    Output(json_).show(result, human)


@remote_app.command("unset", epilog=example("practiceplan remote unset"))
@handle_errors
def remote_unset(ctx: typer.Context, json_: Json = False) -> None:
    """Forget the sync server of this database (a stored token stays until `practiceplan logout`)."""
    result = _remote(ctx).unset()
    line = (f"Remote {safe(result['previous'])} unset" if result["previous"] else "No remote was set")
    Output(json_).done(result, line)


def _read_token(token_stdin: bool, url: str) -> str:
    from practiceplan.errors import UsageError

    if token_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise UsageError("no token on stdin", hint="e.g. pass show practiceplan | practiceplan login --token-stdin")
        return line
    if not stdin_is_tty():
        raise UsageError("no terminal to ask for the token on",
                         hint="pipe it in instead: practiceplan login --token-stdin < token.txt")
    return str(typer.prompt(f"Token for {safe(url)} (not shown)", hide_input=True, err=True))


@handle_errors
def login(
    ctx: typer.Context,
    token_stdin: Annotated[bool, typer.Option("--token-stdin", help="Read the token from one line of stdin "
                                                                    "instead of asking for it.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Store the token without asking the server "
                                                                "whether it accepts it.")] = False,
    json_: Json = False,
) -> None:
    """Store the token for the sync server, after checking it with the server (the token is asked for without
    echo, or read from stdin; never given as an argument).

    Exit 77 when the server refuses the token and 69 when it cannot be reached; nothing is stored then. The token
    goes to the OS keyring when the optional keyring package works, else to credentials.json (mode 600)."""
    remote = _remote(ctx)
    url = remote.require_url()
    result = remote.login(_read_token(token_stdin, url), verify=not no_verify)
    lines = [f"Logged in to {safe(url)}" + ("" if result["verified"] else " (token not checked)"),
             f"token stored in {safe(result['where'])}"]
    if result["shadowedBy"]:
        lines.append(f"note: {result['shadowedBy']} is set and is used instead of the stored token")
    Output(json_).done(result, *lines)


@handle_errors
def logout(ctx: typer.Context, json_: Json = False) -> None:
    """Remove the sync token of the remote from the OS keyring and credentials.json."""
    result = _remote(ctx).logout()
    places = {"keyring": "the OS keyring", "file": "credentials.json"}
    if result["cleared"]:
        lines = ["Logged out of " + safe(result["remote"]) + ": token removed from "
                 + " and ".join(places[p] for p in result["cleared"])]
    else:
        lines = [f"No token was stored for {safe(result['remote'])}; nothing to remove"]
    if result["envStillSet"]:
        lines.append("note: PRACTICEPLAN_TOKEN is still set in the environment and still used")
    Output(json_).done(result, *lines)


@auth_app.command("status", epilog=example("practiceplan auth status", "practiceplan auth status --check --json"))
@handle_errors
def auth_status(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Ask the server whether it accepts the token (exit 0 yes, "
                                                        "77 refused or no token, 69 unreachable).")] = False,
    json_: Json = False,
) -> None:
    """Print the sync server and where its token is kept (env PRACTICEPLAN_TOKEN, OS keyring or a file), never
    the token; with --check, whether the server accepts it."""
    result: dict[str, Any] = _remote(ctx).auth_status(check=check)

    def human() -> None:
        typer.echo(f"remote:    {safe(result['remote']) if result['remote'] else 'none (practiceplan remote set URL)'}")
        typer.echo(_token_line(result["token"]))
        if result["accepted"]:
            typer.echo("server:    accepts the token")

    Output(json_).show(result, human)
