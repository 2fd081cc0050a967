"""Plain lines for `sync`, `sync status` and `sync conflicts` (the same words on a terminal and in a pipe)."""

from __future__ import annotations

from typing import Any

from practiceplan.render.output import safe

KIND_LABEL = {"practice_plan": "plan", "plan_occurrence": "session", "logbook_entry": "logbook entry",
              "plan_template": "template", "plan_comment": "comment"}


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_lines(data: dict[str, Any]) -> list[str]:
    head = "dry run, nothing changed: " if data["dry_run"] else ""
    verb = "would send" if data["dry_run"] else "sent"
    merge = "would merge" if data["dry_run"] else "merged"
    lines = [
        f"{head}{verb} {data['sent']}, received {data['received']}, {merge} {data['merged']}"
        f" ({data['deleted_here']} deleted here), {_n(len(data['conflicts']), 'conflict')}"
        f" — {safe(str(data.get('remote') or ''))} ({data['mode']} pull)",
    ]
    if data.get("unchanged"):
        lines.append(f"  {_n(data['unchanged'], 'queued change')} already on the server (not sent again)")
    for item in data.get("rejected", []):
        lines.append(f"  refused: {KIND_LABEL.get(item['kind'], item['kind'])} {item['id']}: "
                     + safe("; ".join(item["problems"][:3])))
    if data.get("pending") and not data["dry_run"]:
        lines.append(f"  {_n(data['pending'], 'change')} still queued for the next sync")
    return lines


def status_lines(data: dict[str, Any]) -> list[str]:
    pending = data["pending"]
    parts = [f"{_n(pending[k], KIND_LABEL[k])}" for k in KIND_LABEL if pending.get(k)]
    last = data.get("last_sync")
    lines = [
        f"remote:     {safe(data['remote'] or '(none; set one with `practiceplan remote set URL`)')}",
        f"pending:    {pending['total']}" + (f" ({', '.join(parts)})" if parts else ""),
        "last sync:  " + (f"{last['at']} (sent {last['sent']}, received {last['received']}, merged {last['merged']}, "
                          f"{_n(last['conflicts'], 'conflict')})" if last else "never"),
        f"conflicts:  {data['conflicts']} open" + (" (see `practiceplan sync conflicts`)" if data["conflicts"] else ""),
        "server:     " + (", ".join(data["capabilities"]) if data.get("capabilities")
                          else "full snapshots (Mirubato protocol)" if data.get("capabilities") is not None
                          else "not contacted yet"),
    ]
    if data.get("unsent_batch"):
        batch = data["unsent_batch"]
        lines.append(f"in flight:  a batch of {batch['items']} (tried {batch['attempts']}x); the next sync resends it "
                     "as is, unless the server shows it arrived")
    return lines


def conflict_lines(found: list[dict[str, Any]]) -> list[str]:
    if not found:
        return ["no sync conflicts"]
    lines = []
    for c in found:
        state = f" [{c['resolution']}]" if c.get("resolved_at") else ""
        lines.append(f"#{c['id']}  {c['at'][:16].replace('T', ' ')}  {KIND_LABEL.get(c['kind'], c['kind'])} "
                     f"{c['entity_id']}  kept {c['kept']}{state}: {safe(c['reason'])}")
    lines.append("settle one with `practiceplan sync resolve ID --keep local|remote`")
    return lines
