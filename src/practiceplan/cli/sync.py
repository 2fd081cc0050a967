"""`practiceplan sync ...`: exchange data with the remote server; its status, conflicts and their resolution."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from practiceplan.cli._common import Json, example, handle_errors, new_app, session
from practiceplan.render.output import Output, message, progress

app = new_app(
    "Sync with your server (Mirubato or `practiceplan serve`): pull, merge, then push what changed here.\n\n"
    "Run `practiceplan remote set URL` and `practiceplan login` once first. Conflicting edits are settled by "
    "last write wins; the losing version is kept (`sync conflicts`, `sync resolve`).",
    no_args_is_help=False, invoke_without_command=True,
    epilog=example("practiceplan sync", "practiceplan sync --dry-run", "practiceplan sync --json --strict",
                   "practiceplan sync status", "practiceplan sync conflicts",
                   "practiceplan sync resolve 3 --keep local"),
)

DryRun = Annotated[bool, typer.Option("--dry-run", help="Pull and show what would change, without changing anything.")]
Strict = Annotated[bool, typer.Option("--strict", help="Exit 1 when conflicts were recorded (default: 0 and a warning).")]


@app.callback()
@handle_errors
def sync(ctx: typer.Context, dry_run: DryRun = False, strict: Strict = False, json_: Json = False) -> None:
    """Pull from the server, merge, and push this device's changes (a progress bar on a terminal)."""
    if ctx.invoked_subcommand:
        return
    from practiceplan.render.sync import summary_lines

    p = session(ctx)
    with progress("sync") as update:
        summary = p.sync.run(dry_run=dry_run, progress=(lambda phase, done, total: update(done, total))
                             if update else None)
    data = {"remote": p.sync.remote(), **summary.as_json()}
    Output(json_).done(data, *summary_lines(data))
    for warning in summary.warnings:
        message(f"practiceplan: warning: {warning}")
    if summary.conflicts:
        message(f"practiceplan: warning: {len(summary.conflicts)} conflict(s) recorded; see `practiceplan sync "
                "conflicts`")
        if strict:
            raise typer.Exit(1)


@app.command("status", epilog=example("practiceplan sync status", "practiceplan sync status --json"))
@handle_errors
def status(ctx: typer.Context, json_: Json = False) -> None:
    """Show pending changes, the last sync, open conflicts and what the server supports (no network)."""
    from practiceplan.render.sync import status_lines

    data = session(ctx).sync.status()
    Output(json_).show(data, lambda: _echo(status_lines(data)))


@app.command("conflicts", epilog=example("practiceplan sync conflicts", "practiceplan sync conflicts --all --json"))
@handle_errors
def conflicts(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved conflicts.")] = False,
    json_: Json = False,
) -> None:
    """List versions that lost a conflict (kept whole, so nothing is dropped silently)."""
    from practiceplan.render.sync import conflict_lines

    found = session(ctx).sync.conflicts(include_resolved=all_)
    Output(json_).show(found, lambda: _echo(conflict_lines(found)))


@app.command("resolve", epilog=example("practiceplan sync resolve 3 --keep local", "practiceplan sync resolve 4 --keep remote"))
@handle_errors
def resolve(
    ctx: typer.Context,
    conflict_id: Annotated[str, typer.Argument(help="The conflict's number (see `sync conflicts`).", metavar="ID")],
    keep: Annotated[Optional[str], typer.Option("--keep", help="local: this device's version; remote: the server's.",
                                                metavar="local|remote")] = None,
    json_: Json = False,
) -> None:
    """Settle a conflict: keep this device's version (pushed at the next sync) or the server's."""
    from practiceplan.errors import UsageError

    if keep is None:
        raise UsageError("say which version to keep", hint=f"practiceplan sync resolve {conflict_id} --keep local "
                         "(or --keep remote)")
    result = session(ctx).sync.resolve(conflict_id, keep)
    tail = "; it is sent at the next `practiceplan sync`" if result["changed"] else ""
    Output(json_).done(result, f"conflict #{result['id']} resolved: kept the {keep} version of "
                               f"{result['entity_id']}{tail}")


def _echo(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


def register(root: Any) -> None:
    root.add_typer(app, name="sync")
