"""`backup`, `restore`, `doctor`, `export json|csv` and `import json`: your data, safe and portable."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from practiceplan.cli._common import Json, example, handle_errors, new_app, session
from practiceplan.domain.models import plural
from practiceplan.errors import InvalidInputError
from practiceplan.render.output import Output, message, progress, safe

Force = Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")]
OutFile = Annotated[Optional[Path], typer.Option("-o", "--output", help="Write to FILE instead of stdout ('-': stdout).",
                                                metavar="FILE")]

export_app = new_app("Export your data: everything as lossless JSON, the logbook or sessions as CSV, and more.")
import_app = new_app("Import a practiceplan JSON export, or a Mirubato data export, merging by id.")


class CsvKind(str, Enum):
    logbook = "logbook"
    occurrences = "occurrences"


def register(app: typer.Typer) -> None:
    app.command("backup", epilog=example(
        "practiceplan backup",
        "practiceplan backup -o ~/Dropbox/practiceplan-2026-03.db",
        "practiceplan backup --list",
    ))(backup)
    app.command("restore", epilog=example(
        "practiceplan backup --list",
        "practiceplan restore practiceplan-20260302T090000.000Z-schema1.db",
        "practiceplan restore ~/Dropbox/practiceplan-2026-03.db --json",
    ))(restore)
    app.command("doctor", epilog=example("practiceplan doctor", "practiceplan doctor --fix", "practiceplan doctor --json"))(
        doctor
    )
    export_app.command("json", epilog=example(
        "practiceplan export json -o practiceplan-export.json",
        "practiceplan export json | jq '.entries | length'",
    ))(export_json)
    export_app.command("csv", epilog=example(
        "practiceplan export csv logbook -o logbook.csv",
        "practiceplan export csv occurrences > sessions.csv",
    ))(export_csv)
    import_app.command("json", epilog=example(
        "practiceplan import json practiceplan-export.json",
        "practiceplan import json mirubato-data-export-2026-03-01.json --json",
    ))(import_json)
    app.add_typer(export_app, name="export")
    app.add_typer(import_app, name="import")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{max(1, n // 1024)} KiB"


@handle_errors
def backup(
    ctx: typer.Context,
    out_file: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE",
                                                   help="Write the backup here (plus FILE's .json manifest; '-' "
                                                        "writes it to stdout, without one) instead of a new "
                                                        "generation in the backups folder.")] = None,
    force: Force = False,
    list_: Annotated[bool, typer.Option("--list", help="List the backup generations instead.")] = False,
    json_: Json = False,
) -> None:
    """Take an online backup (SQLite backup API, safe while other commands run) with a manifest
    (schema version, app version, sha256, row counts). Keeps the newest `backup_keep` generations (5)."""
    s = session(ctx)
    if list_:
        backups = s.data.list_backups()

        def listing() -> None:
            if not backups:
                typer.echo("No backups yet. Take one with `practiceplan backup`.")
            for item in backups:
                counts = item.get("rowCounts") or {}
                typer.echo(f"{safe(Path(item['path']).name)}  {item.get('created', '?')}  "
                           f"{_size(int(item.get('bytes') or 0))}  {plural(counts.get('logbook_entries', 0), 'entry')}  "
                           f"{safe(item.get('reason', ''))}")

        Output(json_).show({"backups": backups}, listing)
        return
    from practiceplan.fileio import output_target

    to_stdout = out_file is not None and output_target(out_file).is_stdout
    if to_stdout and json_:
        from practiceplan.errors import UsageError

        raise UsageError("--json and -o - would both write to stdout", hint="drop --json, or write to a file")
    result = s.data.backup(output=out_file, force=force)
    lines = [f"Backed up to {safe(result['path'])} (schema {result['schemaVersion']}, {_size(result['bytes'])}, "
             f"sha256 {result['sha256'][:12]})"]
    if result["pruned"]:
        lines.append(f"Removed {plural(len(result['pruned']), 'older generation')}; keeping {s.settings.config['backup_keep']}.")
    if to_stdout:  # stdout carries the backup itself
        message("\n".join(lines))
        return
    Output(json_).done(result, *lines)


@handle_errors
def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A backup file, or the name of one in the backups folder.")],
    force: Annotated[bool, typer.Option("--force", help="Restore a file that has no manifest "
                                                         "(its integrity is still checked).")] = False,
    json_: Json = False,
) -> None:
    """Replace the database by a backup. Checks the manifest's sha256 and `integrity_check` before touching
    anything, refuses while another process writes (exit 75), and keeps the current database as a generation."""
    result = session(ctx).data.restore(file, force=force)
    lines = [f"Restored {safe(result['restored'])} (schema {result['schemaVersion']}, "
             f"{result['rowCounts'].get('logbook_entries', 0)} logbook entries)."]
    if result["generation"]:
        lines.append(f"The previous database is kept as {safe(result['generation'])}")
    if result["setAside"]:
        lines.append(f"The damaged database was moved aside to {safe(result['setAside'])}")
    Output(json_).done(result, *lines)


@handle_errors
def doctor(
    ctx: typer.Context,
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe: migrate, recompute the rollup, "
                                                    "extend the horizon, checkpoint a big WAL, chmod 600.")] = False,
    json_: Json = False,
) -> None:
    """Check integrity, foreign keys, schema version, links, the logbook rollup, the horizon, WAL size, file
    permissions and the file system, and say how to fix what it finds. Exit 65 when an error remains."""
    report = session(ctx).data.doctor(fix=fix)

    def human() -> None:
        marks = {"ok": "ok", "info": "info", "warning": "WARN", "error": "ERROR"}
        for check in report["checks"]:
            mark = "fixed" if check["fixed"] else marks[check["status"]]
            typer.echo(f"{mark:<6} {check['name']:<14} {safe(check['message'])}")
            if check["fix"] and not check["fixed"] and check["status"] in ("warning", "error", "info"):
                typer.echo(f"{'':<6} {'':<14} fix: {safe(check['fix'])}")

    Output(json_).show(report, human)
    if not report["ok"]:
        raise InvalidInputError(f"doctor found {plural(report['errors'], 'problem')} in {report['database']}",
                                hint="see the fix lines above" if not json_ else "see checks[].fix")


@handle_errors
def export_json(ctx: typer.Context, out_file: OutFile = None, force: Force = False) -> None:
    """Export everything (plans, occurrences, logbook, templates, goals, events, sync conflicts), deleted
    items included, in wire format: one JSON document that `import json` merges back losslessly."""

    _deliver(session(ctx).data.export_json_text(), out_file, force)


def _deliver(text: str, output: Path | None, force: bool) -> None:
    """Export text to stdout (no -o, or ``-o -``), or where -o points (fileio.write_output: a device or FIFO as a
    stream, a regular file atomically and never over an existing one without --force)."""
    if output is None:
        typer.echo(text, nl=False)
        return
    from practiceplan.fileio import write_output

    # exports hold personal data: 0600
    target = write_output(output, text.encode("utf-8"), mode=0o600, replace=force, as_input_error=False)
    if target.kind != "fd":
        message(f"Exported to {output}")


@handle_errors
def export_csv(
    ctx: typer.Context,
    what: Annotated[CsvKind, typer.Argument(metavar="logbook|occurrences", help="What to export.")],
    out_file: OutFile = None,
    force: Force = False,
) -> None:
    """Export the logbook or the planned sessions as CSV for spreadsheets (cells that a spreadsheet would
    run as a formula are prefixed with ')."""

    _deliver(session(ctx).data.export_csv_text(what.value), out_file, force)


@handle_errors
def import_json(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A `practiceplan export json` file or a Mirubato data export.")],
    json_: Json = False,
) -> None:
    """Merge an export back by id in one transaction (all or nothing): new items are added, an item replaces
    the local one only when its updatedAt is newer, identical ones are skipped. Imported changes sync."""
    p = session(ctx)
    with progress("importing") as update:
        result = p.data.import_json(file, None if json_ else update)
    Output(json_).done(result, f"Imported {safe(result['file'])}: {result['inserted']} new, {result['replaced']} "
                               f"replaced, {result['unchanged']} unchanged, {result['keptLocal']} kept (local is newer)")
    for warning in p.data.skipped_warnings(result):
        message(f"warning: {warning}")
