"""Rich views for templates: lists, the detail view, the gallery, the preview calendar, upgrade diffs.

Template text comes from other people (a tutor's file), so every such string goes through :func:`safe`
and into ``rich.text.Text``; nothing is interpolated into markup (the console has ``markup=False``).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rich import box
from rich.table import Table
from rich.text import Text

from practiceplan.domain.models import parse_instant, plural
from practiceplan.domain.templates import key_text
from practiceplan.render.logbook import piece_text
from practiceplan.render.output import console, safe
from practiceplan.render.plain import local
from practiceplan.render.plans import describe_schedule, rule_words, segment_line
from practiceplan.render.tables import new_table

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
STATUS_STYLE = {"draft": "yellow", "published": "green", "imported": "cyan"}


def _t(value: object, style: str = "") -> Text:
    return Text(safe(value), style=style)


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    return grid


def _minutes(template: dict[str, Any]) -> str:
    minutes = (template.get("schedule") or {}).get("durationMinutes")
    if not minutes:
        workload = ((template.get("metadata") or {}).get("preview") or {}).get("workload") or {}
        minutes = workload.get("sessionMinutes")
    return str(minutes) if minutes else "-"


def value_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        if all("label" in v for v in value):
            return "; ".join(f"{v['label']} {v.get('durationMinutes', '?')}m" for v in value)
        return "; ".join(piece_text(v) for v in value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value) or "(none)"
    return json.dumps(value, ensure_ascii=False)


def print_templates(items: list[dict[str, Any]], short: dict[str, str]) -> None:
    out = console()
    if not items:
        out.print("No templates yet. Make one from a plan: practiceplan template create --from-plan PLAN")
        return
    table = new_table("ID", "Title", "Status", "Ver", "Visibility", "Params", "Adopted")
    for item in items:
        template = item["template"]
        status = item["status"] + (" *" if item["status"] == "published" and item["unpublishedChanges"] else "")
        table.add_row(
            _t(short.get(template["id"], template["id"])),
            _t(template.get("title")),
            Text(status, style=STATUS_STYLE.get(item["status"], "")),
            _t(item["latestVersion"] or "-"),
            _t(template.get("visibility") or "private"),
            str(len((template.get("metadata") or {}).get("parameters") or [])),
            str(item["adoptions"]),
        )
    out.print(table)
    if any(i["status"] == "published" and i["unpublishedChanges"] for i in items):
        out.print(Text("* unpublished changes: run `practiceplan template publish ID`", style="dim"))


def print_gallery(items: list[dict[str, Any]], short: dict[str, str], empty: str | None = None) -> None:
    out = console()
    if not items:
        out.print(empty or "No templates to adopt. Import one from your tutor: practiceplan template import FILE")
        return
    table = new_table("ID", "Title", "Instrument", "Level", "Min", "Ver", "Adopted", "From")
    for item in items:
        template = item["template"]
        meta = template.get("metadata") or {}
        source = item["signedBy"] or ("unsigned" if item["allowUnsigned"] else "you" if item["status"] == "published" else "-")
        table.add_row(
            _t(short.get(template["id"], template["id"])),
            _t(template.get("title")),
            _t(meta.get("instrument") or "-"),
            _t(meta.get("level") or "-"),
            _minutes(template),
            str(item["latestVersion"] or template.get("templateVersion") or "-"),
            str(item["adoptions"]),
            _t(source),
        )
    out.print(table)


def _segments(out: Any, template: dict[str, Any]) -> None:
    meta = template.get("metadata") or {}
    segments = [s for s in meta.get("segments") or [] if isinstance(s, dict)]
    if segments:
        out.print(Text("Segments", style="bold"))
        for segment in segments:
            line = segment_line(segment)
            if segment.get("pieceRefs"):
                line += f" [{'; '.join(piece_text(p) for p in segment['pieceRefs'])}]"
            out.print(_t(line))
    prompts = [p for p in meta.get("reflectionPrompts") or [] if isinstance(p, str)]
    if prompts:
        out.print(Text("Reflection prompts", style="bold"))
        for prompt in prompts:
            out.print(_t(f"  ? {prompt}"))


def print_parameters(out: Any, parameters: list[dict[str, Any]]) -> None:
    if not parameters:
        return
    out.print(Text("Parameters", style="bold"))
    table = new_table("Name", "Type", "Default", "Targets", "Label")
    for param in parameters:
        default = value_text(param["default"]) if "default" in param else "(required)" if param.get("required", True) else "-"
        if param.get("choices"):
            default += "  of " + ", ".join(str(c) for c in param["choices"])
        table.add_row(
            _t(param.get("name")), _t(param.get("type")), _t(default), _t(", ".join(param.get("targets") or [])),
            _t(param.get("label") or ""),
        )
    out.print(table)


def print_template(info: dict[str, Any], parameters: list[dict[str, Any]], short_id: str, zone: ZoneInfo) -> None:
    out = console()
    template = info["template"]
    meta = template.get("metadata") or {}
    out.print(_t(template.get("title"), "bold"))
    grid = _grid()
    rows: list[tuple[str, object]] = [
        ("id", f"{template['id']} ({short_id})"),
        ("status", info["status"] + (" (unpublished changes)" if info["status"] == "published" and info["unpublishedChanges"] else "")),
        ("version", template.get("templateVersion")),
        ("versions stored", ", ".join(str(v["version"]) for v in info["versions"]) or "none"),
        ("visibility", template.get("visibility") or "private"),
        ("type", template.get("type") or "custom"),
        ("schedule", describe_schedule(template)),
        ("minutes", _minutes(template)),
        ("instrument", meta.get("instrument") or "-"),
        ("level", meta.get("level") or "-"),
        ("focus", ", ".join(template.get("focusAreas") or []) or "-"),
        ("techniques", ", ".join(template.get("techniques") or []) or "-"),
        ("pieces", "; ".join(piece_text(p) for p in template.get("pieceRefs") or []) or "-"),
        ("targets", ", ".join(f"{k}={value_text(v)}" for k, v in (meta.get("targets") or {}).items()) or "-"),
        ("tags", ", ".join(template.get("tags") or []) or "-"),
        ("adopted here", info["adoptions"]),
    ]
    if template.get("description"):
        rows.insert(1, ("description", template["description"]))
    if template.get("publishedAt"):
        rows.append(("published", local(template["publishedAt"], zone)))  # in your zone, not UTC
    if info.get("signedBy"):
        rows.append(("signed by", info["signedBy"]))
    elif info.get("allowUnsigned"):
        rows.append(("signature", "none (imported with --allow-unsigned)"))
    for key, value in rows:
        grid.add_row(key, _t(value))
    out.print(grid)
    _segments(out, template)
    print_parameters(out, parameters)


def print_lint(report: dict[str, Any]) -> None:
    out = console()
    out.print(_t(f"OK: {report['title']} (template {report['templateId']}, version {report['templateVersion']}, "
                 f"{plural(report['segments'], 'segment')}, {plural(report['parameters'], 'parameter')})"))
    if report["signature"]["present"]:
        out.print(_t(f"signature: {signature_text(report['signature'])}"))
    for warning in report["warnings"]:
        out.print(_t(f"warning: {warning}", "yellow"))


def print_preview(result: dict[str, Any], zone: ZoneInfo, week_start: int) -> None:
    """A calendar of the sessions, one row per week, one column per weekday."""
    out = console()
    out.print(_t(f"Preview: {result['plan'].get('title')}", "bold"))
    sessions = result["sessions"]
    total = 0
    by_day: dict[date, list[str]] = {}
    for occ in sessions:
        start, end = parse_instant(occ.get("scheduledStart")), parse_instant(occ.get("scheduledEnd"))
        if start is None:
            continue
        local = start.astimezone(zone)
        minutes = int((end - start).total_seconds() // 60) if end else 0
        total += minutes
        when = local.strftime("%H:%M") if (result["plan"].get("schedule") or {}).get("timeOfDay") else "any time"
        by_day.setdefault(local.date(), []).append(f"{when} {minutes}m" if minutes else when)
    first = date.fromisoformat(result["from"])
    last = date.fromisoformat(result["to"])
    day_one = date.fromisoformat(result["firstDay"])
    names = [WEEKDAY_NAMES[(week_start + i) % 7] for i in range(7)]
    table = Table(box=box.SQUARE, show_lines=True, pad_edge=False)
    for name in names:
        table.add_column(name, overflow="fold", min_width=9)
    day = first
    while day <= last:
        cells = []
        for _ in range(7):
            cell = Text(day.strftime("%d %b"), style="dim" if day < day_one else "")
            for line in by_day.get(day, []):
                cell.append("\n")
                cell.append(line, style="cyan")
            cells.append(cell)
            day += timedelta(days=1)
        table.add_row(*cells)
    out.print(table)
    out.print(_t(f"{plural(len(sessions), 'session')}, {plural(total, 'minute')} in {plural(result['weeks'], 'week')} ({result['timezone']}); "
                 f"first day {result['firstDay']}"))
    if result["parameters"]:
        out.print(_t("with " + ", ".join(f"{k}={value_text(v)}" for k, v in result["parameters"].items())))
    _segments(out, result["plan"])
    signature = result["signature"]
    if not signature["present"]:
        out.print(Text("not signed: importing it needs --allow-unsigned", style="yellow"))
    elif not signature["valid"]:
        out.print(Text("the signature does NOT match the content", style="bold red"))
    else:
        out.print(_t(signature_text(signature), "" if signature.get("trustedAs") else "yellow"))


def signature_text(signature: dict[str, Any]) -> str:
    """A valid signature names the tutor you trust it as: "signed by Ms Lee (key f11e...)"; otherwise what is
    wrong with it ("INVALID", or a key you do not trust)."""
    key = key_text(signature["fingerprint"], signature.get("trustedAs"))
    if not signature["valid"]:
        return f"INVALID ({key}): the file was changed after it was signed"
    if signature.get("trustedAs"):
        return f"signed by {key}"
    return f"signed by {key}, which you do not trust yet (`practiceplan template trust add`)"


def print_keygen(fingerprint: str, public_text: str, private_path: Any, public_path: Any) -> None:
    out = console()
    out.print(_t(f"Created {key_text(fingerprint)} (Ed25519)", "bold"))
    out.print(_t(f"private key: {private_path} (keep it secret; `template sign` and `export --sign` use it)"))
    out.print(_t(f"public key:  {public_path}"))
    out.print(_t("Learners trust it with:"))
    out.print(_t(f"  practiceplan template trust add {public_text} --name YOUR-NAME"))


FIELD_LABELS = {
    "title": "title", "description": "description", "type": "type", "tags": "tags", "focusAreas": "focus areas",
    "techniques": "techniques", "pieceRefs": "pieces", "instrument": "instrument", "level": "level",
    "segments": "segments", "reflectionPrompts": "reflection prompts", "targets": "targets",
    "schedule.kind": "kind of schedule", "schedule.rule": "repeats", "schedule.timeOfDay": "time of day",
    "schedule.durationMinutes": "minutes per session", "schedule.flex": "flexibility", "schedule.endDate": "end date",
}
SEGMENT_KEYS = {"label": "name", "durationMinutes": "minutes", "instructions": "instructions", "pieceRefs": "pieces",
                "techniques": "techniques"}


def field_label(path: str) -> str:
    """A merge path as a person reads it: "schedule.timeOfDay" is "time of day", "segments[1].durationMinutes"
    "segment 2 minutes", "targets.tempo" "target tempo"."""
    if path.startswith("segments[") and "]." in path:
        index, key = path[len("segments["):].split("].", 1)
        return f"segment {int(index) + 1} {SEGMENT_KEYS.get(key, key)}"
    if path.startswith("targets."):
        return f"target {path[len('targets.'):]}"
    return FIELD_LABELS.get(path, path)


def field_value(path: str, value: Any) -> str:
    """A merge value as text; a rule in words when it can be said."""
    if path == "schedule.rule" and isinstance(value, str):
        return rule_words(value)
    return value_text(value)


def print_upgrade(changes: list[dict[str, Any]], header: str) -> None:
    out = console()
    out.print(_t(header, "bold"))
    if not changes:
        out.print("No differences that concern your plan.")
        return
    table = new_table("Field", "Yours", "Template", "Result")
    labels = {"theirs": "template", "mine": "kept yours", "clash": "CLASH"}
    for change in changes:
        outcome = labels[change["outcome"]]
        if change["outcome"] == "clash" and change["choice"]:
            outcome += f" → {'yours' if change['choice'] == 'mine' else 'template'}"
        table.add_row(
            _t(field_label(change["path"])), _t(field_value(change["path"], change["mine"])),
            _t(field_value(change["path"], change["theirs"])),
            Text(outcome, style="bold red" if change["outcome"] == "clash" and not change["choice"] else ""),
        )
    out.print(table)


def print_trusted(keys: list[dict[str, str]]) -> None:
    out = console()
    if not keys:
        out.print("No trusted tutor keys. Add one: practiceplan template trust add ed25519:<key> --name NAME")
        return
    table = new_table("Name", "Key", "Added", "Public key")
    for key in keys:
        table.add_row(_t(key["name"]), _t(key["fingerprint"]), _t(key["addedAt"]), _t("ed25519:" + key["publicKey"]))
    out.print(table)
