"""`practiceplan serve` and `practiceplan server user add|list|revoke`, `server backup`: run and administer the
self-hostable sync server (docs/server.md). Everything server-side is imported lazily from practiceplan.server,
so no other command pays for SQLAlchemy, Starlette or uvicorn.

Exit codes: 0 ok, 2 usage, 3 no such user, 65 invalid input (a user that exists, a bad name), 69 the database
cannot be reached or the server extra is not installed, 77 refusing to run as root.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from practiceplan.cli._common import Json, example, handle_errors, new_app
from practiceplan.render.output import Output, safe

DATABASE_ENV = "PRACTICEPLAN_SERVER_DATABASE"
server_app = new_app("Administer the sync server: its users and backups.")
user_app = new_app("Add, list and revoke the sync server's users (each has one role and one token).")
server_app.add_typer(user_app, name="user")

Database = Annotated[Optional[str], typer.Option(
    "--database", metavar="URL|PATH",
    help=f"postgresql://user@host/db, or a SQLite file (default: {DATABASE_ENV}, else server.db in the data dir).")]


def register(app: typer.Typer) -> None:
    app.command("serve", epilog=example(
        "practiceplan serve",
        "practiceplan serve --host 0.0.0.0 --port 8080 --database /srv/practiceplan/server.db",
        "practiceplan serve --database postgresql://pp@db.internal/practiceplan --workers 4",
    ))(serve)
    app.add_typer(server_app, name="server")


def _require_extra() -> None:
    from practiceplan.errors import RemoteUnavailableError

    try:
        import practiceplan.server.db  # noqa: F401  (imports sqlalchemy)
        import practiceplan.server.app  # noqa: F401  (imports starlette)
    except ImportError as exc:
        raise RemoteUnavailableError(f"the server's dependencies are not installed ({exc.name} is missing)",
                                     hint="pip install 'practiceplan[server]'") from None


def _database(value: str | None) -> str:
    if value:
        return value
    if os.environ.get(DATABASE_ENV):
        return os.environ[DATABASE_ENV]
    from practiceplan.settings import Settings

    return str(Settings().data_dir / "server.db")


def _describe(url: str) -> str:
    """The database for messages: a file path, or a PostgreSQL URL without its password."""
    if "://" not in url:
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{parts.path}"


def _engine(database: str | None) -> tuple[Any, str]:
    """An engine on a migrated database; connection problems are one line with exit 69."""
    _require_extra()
    from practiceplan.errors import RemoteUnavailableError, UsageError
    from practiceplan.server import db

    where = _database(database)
    try:
        url = db.database_url(where)
    except ValueError as exc:
        raise UsageError(str(exc), hint="use postgresql://... or a file path") from None
    try:
        engine = db.make_engine(url, pool_size=1)
        db.migrate(engine)
    except Exception as exc:  # noqa: BLE001 - any driver error: say where, not a traceback
        raise RemoteUnavailableError(f"cannot open the server database {_describe(where)}: {type(exc).__name__}",
                                     hint="check --database (and that PostgreSQL is running and reachable)") from None
    return engine, where


@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8080,
    database: Database = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                         help="Worker processes (more than 1 is best with PostgreSQL).")] = 1,
    cors_origin: Annotated[Optional[list[str]], typer.Option(
        "--cors-origin", metavar="ORIGIN", help="Allow browser requests from ORIGIN (repeatable; CORS is off "
                                                "by default).")] = None,
    max_body: Annotated[int, typer.Option("--max-body", min=1024, metavar="BYTES",
                                          help="Largest request body (413 beyond).")] = 5 * 1024 * 1024,
    max_items: Annotated[int, typer.Option("--max-items", min=1, help="Most items in one push or batch "
                                                                      "(413 beyond).")] = 1000,
    rate: Annotated[float, typer.Option("--rate", min=0, metavar="PER_MINUTE",
                                        help="Requests per minute per token (429 beyond; 0: no limit).")] = 600,
    quiet: Annotated[bool, typer.Option("--quiet", help="No access log lines.")] = False,
    allow_root: Annotated[bool, typer.Option("--allow-root", help="Run even as root (not recommended).")] = False,
) -> None:
    """Run the sync server: Mirubato's sync API plus practiceplan's extensions, on SQLite or PostgreSQL.

    It migrates the database first, then serves until SIGINT/SIGTERM (in-flight requests are finished). Put it
    behind a TLS reverse proxy to reach it from other machines (docs/server.md). Access logs are JSON lines on
    stderr, without tokens."""
    from practiceplan.errors import NotAuthorisedError, RemoteUnavailableError

    if hasattr(os, "geteuid") and os.geteuid() == 0 and not allow_root:
        raise NotAuthorisedError("refusing to run the server as root",
                                 hint="run it as an unprivileged user, or pass --allow-root")
    _require_extra()
    from practiceplan.server import run
    from practiceplan.server.service import Limits

    where = _database(database)
    limits = Limits(max_body_bytes=max_body, max_items=max_items, rate_per_minute=rate)
    try:
        run.prepare(where)
    except ValueError as exc:
        from practiceplan.errors import UsageError

        raise UsageError(str(exc), hint="use postgresql://... or a file path") from None
    except Exception as exc:  # noqa: BLE001
        raise RemoteUnavailableError(f"cannot open the server database {_describe(where)}: {type(exc).__name__}",
                                     hint="check --database (and that PostgreSQL is running and reachable)") from None
    run.serve(where, host=host, port=port, workers=workers, limits=limits, cors=tuple(cors_origin or ()),
              log="quiet" if quiet else "info")


@user_app.command("add", epilog=example("practiceplan server user add anna --role learner",
                                        "practiceplan server user add mr-keys --role tutor --database server.db"))
@handle_errors
def user_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -); also the author name others see.")],
    role: Annotated[str, typer.Option("--role", help="learner, tutor (may publish templates) or admin.",
                                      metavar="ROLE")] = "learner",
    database: Database = None,
    json_: Json = False,
) -> None:
    """Add a user and print its token once (only its hash is stored: keep the token, or revoke and add again)."""
    from practiceplan.errors import InvalidInputError, UsageError

    engine, _where = _engine(database)
    from practiceplan.server import users

    if role not in users.ROLES:
        raise UsageError(f"unknown role '{role}'", hint="use learner, tutor or admin")
    try:
        user, token = users.add(engine, name, role)
    except users.UserExists:
        raise InvalidInputError(f"user '{name}' already exists",
                                hint="choose another name, or see `practiceplan server user list`") from None
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    finally:
        engine.dispose()
    result = {"name": user.name, "role": user.role, "token": token}
    Output(json_).done(result, f"Added {safe(user.name)} ({user.role}). Their token (shown only now):", token,
                       "On their device: practiceplan remote set URL && practiceplan login")


@user_app.command("list", epilog=example("practiceplan server user list", "practiceplan server user list --json"))
@handle_errors
def user_list(database: Database = None, json_: Json = False) -> None:
    """List the users: name, role, active or revoked, entities stored, last sync (never tokens)."""
    engine, _where = _engine(database)
    from practiceplan.server import users

    try:
        rows = users.listing(engine)
    finally:
        engine.dispose()

    def human() -> None:
        if not rows:
            typer.echo("No users yet. Add one with: practiceplan server user add NAME --role learner")
            return
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            state = "active" if r["active"] else f"revoked {r['revokedAt']}"
            typer.echo(f"{safe(r['name']).ljust(width)}  {r['role']:<7}  {state:<8}  {r['entityCount']:>6} entities"
                       f"  last sync {r['lastSyncTime'] or 'never'}")

    Output(json_).show({"users": rows}, human)


@user_app.command("revoke", epilog=example("practiceplan server user revoke anna"))
@handle_errors
def user_revoke(
    name: Annotated[str, typer.Argument(help="The user whose token stops working (their data is kept).")],
    database: Database = None,
    json_: Json = False,
) -> None:
    """Revoke a user's token: every request with it is refused (401) from now on; their data stays."""
    from practiceplan.errors import NotFoundError

    engine, _where = _engine(database)
    from practiceplan.server import users

    try:
        result = users.revoke(engine, name)
    except users.NoSuchUser:
        raise NotFoundError(f"no user '{name}'", hint="see `practiceplan server user list`") from None
    finally:
        engine.dispose()
    line = f"{safe(name)} was already revoked" if result["already"] else f"Revoked {safe(name)}'s token"
    Output(json_).done(result, line)


@server_app.command("backup", epilog=example("practiceplan server backup -o server-2026-05-01.db",
                                             "practiceplan server backup -o pp.dump --database postgresql://pp@db/pp"))
@handle_errors
def backup(
    output: Annotated[Path, typer.Option("-o", "--output", help="The backup file to write.", metavar="FILE")],
    database: Database = None,
    json_: Json = False,
) -> None:
    """Copy the server database while it runs (SQLite online backup, integrity-checked); for PostgreSQL print
    the pg_dump command that does it."""
    from practiceplan.errors import NotFoundError

    _require_extra()
    from practiceplan.server.backup import backup as take

    where = _database(database)
    try:
        result: dict[str, Any] = take(where, output)
    except FileNotFoundError:
        raise NotFoundError(f"no server database at {where}", hint="pass --database") from None
    if result["written"]:
        Output(json_).done(result, f"Backed up {safe(where)} to {safe(str(output))} ({result['bytes']} bytes)")
    else:
        Output(json_).done(result, "PostgreSQL: take the backup with pg_dump (it is consistent while the server runs):",
                           result["command"])
