"""`practiceplan watch`: follow changes live (docs/collaboration.md "Live updates"). Parse, call
services/watch.py, print one line (or one JSON object) per event."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer

from practiceplan.cli._common import example, handle_errors, session


def register(app: typer.Typer) -> None:
    app.command("watch", epilog=example(
        "practiceplan watch",
        "practiceplan watch --json | jq -c 'select(.type == \"PLAN_OCCURRENCE_COMPLETED\")'",
        "practiceplan watch --once 1 --no-sync",
    ))(watch)


def _json_line(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


@handle_errors
def watch(
    ctx: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Print each event as one JSON object per line (and a "
                                                       "SYNCED object after each catch-up sync).")] = False,
    no_sync: Annotated[bool, typer.Option("--no-sync", help="Only print events; do not sync on connecting and "
                                                            "after events.")] = False,
    once: Annotated[Optional[int], typer.Option("--once", min=1, metavar="N",
                                                help="Stop after N events (for scripts and tests).")] = None,
) -> None:
    """Follow changes live: print each event your server sends (plans, sessions, comments, members) as it
    happens, and sync on connecting and shortly after each event so this device stays current.

    Needs a `practiceplan serve` server, `practiceplan remote set URL` and `practiceplan login`. A lost
    connection is retried (a note on stderr); nothing is missed, as each reconnection syncs. Stops on Ctrl-C
    (exit 0), after --once N events, or when the token is refused (exit 77); exit 69 when the server cannot be
    reached at the start."""
    from practiceplan.render.output import message
    from practiceplan.render.watch import print_line, synced_line
    from practiceplan.services.watch import Watch

    p = session(ctx)
    zone = p.zone
    titles: dict[str, str] = {}  # plan id -> title on this device; read again after each sync

    def on_event(event: dict[str, Any]) -> None:
        if json_:
            _json_line(event)
            return
        if not titles:
            titles.update((plan["id"], plan.get("title") or plan["id"]) for plan in p.store.plans())
        print_line(event, zone, titles)

    def on_synced(summary: Any) -> None:
        titles.clear()
        if json_:
            _json_line({"type": "SYNCED", "received": summary.received, "merged": summary.merged})
        elif summary.received or summary.merged:
            from practiceplan import clock

            sys.stdout.write(synced_line(summary.received, summary.merged,
                                         clock.now(zone).strftime("%H:%M:%S")) + "\n")
            sys.stdout.flush()

    def on_lost(why: str, delay: float) -> None:
        message(f"practiceplan: connection lost ({why}), reconnecting in {delay:g}s")

    try:
        Watch(p).run(on_event=on_event, on_lost=on_lost, on_synced=on_synced, sync=not no_sync, once=once)
    except KeyboardInterrupt:
        return
