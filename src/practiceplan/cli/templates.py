"""`practiceplan template ...`: tutor plan templates as files, signatures and trust, adoption, upgrades."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from practiceplan.cli._common import (
    Json,
    example,
    handle_errors,
    new_app,
    session,
    stdin_is_tty,
)
from practiceplan.cli.plans import (
    At,
    Description,
    End,
    EveryOpt,
    Exdate,
    FlexOpt,
    Focus,
    Instrument,
    Interval,
    Minutes,
    On,
    Once,
    Piece,
    Prompt,
    Rrule,
    Segment,
    Start,
    Target,
    Technique,
    Tz,
    build_input,
)
from practiceplan.domain.models import plural
from practiceplan.render.output import Output, message, safe

if TYPE_CHECKING:
    from practiceplan.domain.plans import PlanInput
    from practiceplan.services.session import Session
    from practiceplan.services.templates import Templates


app = new_app(
    "Plan templates: create and publish them (tutors), import, adopt and upgrade them (learners).",
    epilog=example(
        "practiceplan template create --from-plan 3f2a1c --level beginner",
        "practiceplan template publish 9d8e7f && practiceplan template export 9d8e7f -o scales.json",
        "practiceplan template import scales.json && practiceplan template adopt 9d8e7f",
    ),
)

trust_app = new_app("Tutor keys you trust: templates signed with them can be imported.")
app.add_typer(trust_app, name="trust")


class Kind(str, Enum):
    bootcamp = "bootcamp"
    course = "course"
    custom = "custom"


class Visibility(str, Enum):
    public = "public"
    private = "private"


TemplateId = Annotated[str, typer.Argument(metavar="ID", help="Template id or unique prefix.")]
FileArg = Annotated[str, typer.Argument(metavar="FILE", help="Template file ('-' reads stdin).")]
Title = Annotated[Optional[str], typer.Option("--title", help="Template title.")]
KindOpt = Annotated[Optional[Kind], typer.Option("--type", help="bootcamp, course or custom.")]
VisibilityOpt = Annotated[Optional[Visibility], typer.Option("--visibility", help="public or private.")]
Tag = Annotated[Optional[list[str]], typer.Option("--tag", help="Tag (repeatable), e.g. instrument:piano.")]
Level = Annotated[Optional[str], typer.Option("--level", help="Level, e.g. beginner, intermediate, advanced.")]
ParamSpec = Annotated[
    Optional[list[str]],
    typer.Option("--param-spec", metavar="NAME:TYPE:TARGETS[:DEFAULT]",
                 help="Declare a parameter (repeatable); types: text, choice, instrument, pieces, date, time, weekdays, "
                      "minutes, integer; see docs/template-format.md for targets."),
]
Choices = Annotated[Optional[list[str]], typer.Option("--choices", metavar="NAME=A,B", help="Allowed values of a parameter.")]
MaxPrompts = Annotated[
    int, typer.Option("--max-prompts", min=1, max=10, envvar="PRACTICEPLAN_TEMPLATE_MAX_PROMPTS",
                      help="Reflection prompts allowed per template (default 5).")
]
Params = Annotated[
    Optional[list[str]], typer.Option("--param", metavar="NAME=VALUE", help="A parameter value (repeatable).")
]
KeyOpt = Annotated[Optional[str], typer.Option(
    "--key", metavar="KEY", help="Your private key file (default: the one `template keygen` wrote).")]
StartDay = Annotated[Optional[str], typer.Option("--start", metavar="DATE", help="First day (default: today).")]
RemoteOpt = Annotated[bool, typer.Option(
    "--remote", help="On the sync server (`practiceplan remote set URL`, `practiceplan login`), not only here.")]


def _service(ctx: typer.Context) -> Any:

    return session(ctx).templates


def _limits(max_prompts: int) -> Any:
    from practiceplan.formats.templates.format import Limits

    return Limits(max_prompts=max_prompts)


def _params(values: list[str] | None) -> dict[str, str]:
    from practiceplan.errors import InvalidInputError

    result: dict[str, str] = {}
    for text in values or []:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInputError(f"--param '{text}' must look like NAME=VALUE", hint="e.g. --param piece='Clair de lune — Debussy'")
        if name in result:
            raise InvalidInputError(f"--param {name} is given twice", hint="give each parameter once")
        result[name] = value
    return result


def _ask_param(param: dict[str, Any], error: str | None) -> str:
    """Ask for a missing parameter on the terminal (stderr, so stdout stays data)."""
    if error:
        typer.echo(f"  {safe(error)}", err=True)
    label = safe(param.get("label") or param["name"])
    hint = {
        "pieces": "Title — Composer; ...", "date": "YYYY-MM-DD or e.g. 'next monday'", "time": "HH:MM",
        "weekdays": "e.g. mo,we,fr", "minutes": "minutes", "integer": "a whole number",
    }.get(param["type"], param["type"])
    if param.get("choices"):
        hint = "one of " + ", ".join(safe(c) for c in param["choices"])
    return str(typer.prompt(f"{label} ({hint})", err=True))


def _decide(change: Any) -> str:
    from practiceplan.render.templates import field_label, field_value

    typer.echo(f"clash in {safe(field_label(change.path))}:", err=True)
    typer.echo(f"  yours:    {safe(field_value(change.path, change.as_json()['mine']))}", err=True)
    typer.echo(f"  template: {safe(field_value(change.path, change.as_json()['theirs']))}", err=True)
    while True:
        answer = str(typer.prompt("keep [m]ine or take [t]heirs", default="m", err=True)).strip().lower()
        if answer in ("m", "mine"):
            return "mine"
        if answer in ("t", "theirs"):
            return "theirs"


def _say(text: str) -> None:
    typer.echo(safe(text))


def _plan_input(p: Session, **options: Any) -> PlanInput:
    given = {k: v for k, v in options.items() if v not in (None, [], False)}
    if not given:
        return None
    return build_input(p, title=None, description=None, **{k: options.get(k) for k in _PLAN_OPTIONS})


_PLAN_OPTIONS = ("once", "rrule", "every", "on", "interval", "start", "end", "at", "minutes", "tz", "flex", "instrument",
                 "focus", "technique", "piece", "segment", "prompt", "target", "exdate")


def _options(title: Any, description: Any, kind: Any, visibility: Any, tag: Any, level: Any, param_spec: Any,
             choices: Any, drop_param: Any = None) -> Any:
    from practiceplan.services.templates import TemplateOptions

    return TemplateOptions(
        title=title, description=description, kind=kind.value if kind else None,
        visibility=visibility.value if visibility else None, tags=tag or None, level=level,
        param_specs=param_spec or [], choices=choices or [], drop_params=drop_param or [],
    )


def _report(service: Templates, verb: str, template: dict[str, Any], as_json: bool, extra: str = "") -> None:
    short = service.store.short_id("plan_template", template["id"])
    Output(as_json).done({"template": template}, safe(
        f'{verb} template {short} "{template.get("title")}" (version {template.get("templateVersion")}){extra}'))


# ---------------------------------------------------------------------------------------------- tutor


@app.command("create", epilog=example(
    "practiceplan template create --from-plan 3f2a1c --level beginner --tag instrument:piano",
    'practiceplan template create --title "Scales bootcamp" --every weekly --on mo,we,fr --at 18:00 '
    '--segment "Scales:10" --param-spec "days:weekdays:schedule.weekdays:mo,we,fr"',
    'practiceplan template create --from-plan 3f2a1c --param-spec "piece:pieces:pieceRefs"',
))
@handle_errors
def create(
    ctx: typer.Context,
    from_plan: Annotated[Optional[str], typer.Option("--from-plan", metavar="PLAN", help="Start from one of your plans.")] = None,
    title: Title = None, description: Description = None, kind: KindOpt = None, visibility: VisibilityOpt = None,
    tag: Tag = None, level: Level = None, param_spec: ParamSpec = None, choices: Choices = None,
    once: Once = None, rrule: Rrule = None, every: EveryOpt = None, on: On = None, interval: Interval = None,
    start: Start = None, end: End = None, at: At = None, minutes: Minutes = None, tz: Tz = None,
    flex: FlexOpt = None, instrument: Instrument = None, focus: Focus = None, technique: Technique = None,
    piece: Piece = None, segment: Segment = None, prompt: Prompt = None, target: Target = None,
    exdate: Exdate = None, max_prompts: MaxPrompts = 5, json_: Json = False,
) -> None:
    """Create a draft template from a plan or from options. Only the plan's schedule, segments, reflection
    prompts, targets, pieces, focus, instrument and level are copied: never check-ins, logbook data,
    session history or other private notes."""
    from practiceplan.errors import InvalidInputError

    service = _service(ctx)
    p = service.s
    inp = _plan_input(p, once=once, rrule=rrule, every=every, on=on, interval=interval, start=start, end=end, at=at,
                      minutes=minutes, tz=tz, flex=flex, instrument=instrument, focus=focus, technique=technique,
                      piece=piece, segment=segment, prompt=prompt, target=target, exdate=exdate)
    if not from_plan:
        if not title:
            raise InvalidInputError("a template needs --title (or --from-plan PLAN)",
                                    hint="e.g. practiceplan template create --from-plan 3f2a1c")
        if inp is None:
            raise InvalidInputError("say when to practise: --every, --rrule or --once (or use --from-plan PLAN)",
                                    hint="e.g. --every weekly --on mo,we,fr --at 18:00")
        inp.title = title
    template = service.create(
        plan_ref=from_plan, inp=inp,
        options=_options(title, description, kind, visibility, tag, level, param_spec, choices),
        limits=_limits(max_prompts),
    )
    _report(service, "Created", template, json_, " — a draft: publish it to share it")


@app.command("edit", epilog=example(
    "practiceplan template edit 9d8e7f --title 'Scales, 3 days a week' --minutes 25",
    "practiceplan template edit 9d8e7f --param-spec 'piece:pieces:pieceRefs' --drop-param old",
    "practiceplan template edit 9d8e7f --from-file scales.json",
))
@handle_errors
def edit(
    ctx: typer.Context,
    template_id: TemplateId,
    from_file: Annotated[Optional[str], typer.Option("--from-file", metavar="FILE",
                                                     help="Replace the content with a template file (same id).")] = None,
    drop_param: Annotated[Optional[list[str]], typer.Option("--drop-param", metavar="NAME", help="Remove a parameter.")] = None,
    title: Title = None, description: Description = None, kind: KindOpt = None, visibility: VisibilityOpt = None,
    tag: Tag = None, level: Level = None, param_spec: ParamSpec = None, choices: Choices = None,
    once: Once = None, rrule: Rrule = None, every: EveryOpt = None, on: On = None, interval: Interval = None,
    start: Start = None, end: End = None, at: At = None, minutes: Minutes = None, tz: Tz = None,
    flex: FlexOpt = None, instrument: Instrument = None, focus: Focus = None, technique: Technique = None,
    piece: Piece = None, segment: Segment = None, prompt: Prompt = None, target: Target = None,
    exdate: Exdate = None, max_prompts: MaxPrompts = 5, json_: Json = False,
) -> None:
    """Change one of your templates (the next `publish` makes it a new version)."""
    service = _service(ctx)
    inp = _plan_input(service.s, once=once, rrule=rrule, every=every, on=on, interval=interval, start=start,
                      end=end, at=at, minutes=minutes, tz=tz, flex=flex, instrument=instrument, focus=focus,
                      technique=technique, piece=piece, segment=segment, prompt=prompt, target=target, exdate=exdate)
    template = service.edit(
        template_id, inp=inp, from_file=from_file,
        options=_options(title, description, kind, visibility, tag, level, param_spec, choices, drop_param),
        limits=_limits(max_prompts),
    )
    _report(service, "Updated", template, json_, " — unpublished changes")


@app.command("list", epilog=example("practiceplan template list", "practiceplan template list --mine --json"))
@handle_errors
def list_(
    ctx: typer.Context,
    mine: Annotated[bool, typer.Option("--mine", help="Only templates you made (not imported ones).")] = False,
    json_: Json = False,
) -> None:
    """List templates: yours (draft or published) and imported ones."""
    service = _service(ctx)
    items = service.listing(include_imported=not mine)

    def human() -> None:
        from practiceplan.render.templates import print_templates

        print_templates(items, service.store.short_ids("plan_template", [i["template"]["id"] for i in items]))

    Output(json_).show({"templates": items}, human)


@app.command("show", epilog=example("practiceplan template show 9d8e7f", "practiceplan template show 9d8e7f --version 1 --json"))
@handle_errors
def show(
    ctx: typer.Context,
    template_id: TemplateId,
    version: Annotated[Optional[int], typer.Option("--version", min=1, help="Show this stored version instead.")] = None,
    json_: Json = False,
) -> None:
    """Show a template: schedule, segments, prompts, parameters, versions."""
    p = session(ctx)
    service = p.templates
    entity, info, parameters = service.show(template_id, version)

    def human() -> None:
        from practiceplan.render.templates import print_template

        print_template(info, parameters, service.store.short_id("plan_template", entity["id"]), p.zone)

    Output(json_).show({**info, "parameters": parameters}, human)


@app.command("publish", epilog=example(
    "practiceplan template publish 9d8e7f", "practiceplan template publish 9d8e7f --visibility public",
    "practiceplan template publish 9d8e7f --visibility public --remote   # and send it to the sync server now",
))
@handle_errors
def publish(ctx: typer.Context, template_id: TemplateId, visibility: VisibilityOpt = None, remote: RemoteOpt = False,
            json_: Json = False) -> None:
    """Publish the current content as the next version (bumps templateVersion, sets publishedAt).
    Older versions stay readable (`template show ID --version N`). With --remote it is synced to the server
    right away; only tutor and admin accounts may publish there (exit 77 otherwise: it stays published here)."""
    service = _service(ctx)
    if not remote:
        template, _number = service.publish(template_id, visibility.value if visibility else None)
        _report(service, "Published", template, json_)
        return
    template, _number, sent = service.publish_remote(template_id, visibility.value if visibility else None)
    short = service.store.short_id("plan_template", template["id"])
    where = (f"on {sent['remote']}" if sent["sent"] else f"here; not yet on {sent['remote']} (run `practiceplan sync`)")
    Output(json_).done({"template": template, "remote": sent}, safe(
        f'Published template {short} "{template.get("title")}" (version {template.get("templateVersion")}) {where}'))


@app.command("export", epilog=example(
    "practiceplan template export 9d8e7f -o scales.json", "practiceplan template export 9d8e7f --version 1 > v1.json",
    "practiceplan template export 9d8e7f --sign -o scales.json   # signed with your default key",
))
@handle_errors
def export(
    ctx: typer.Context,
    template_id: TemplateId,
    out_file: Annotated[Optional[str], typer.Option("-o", "--output", metavar="FILE", help="Write here (default, or '-': stdout).")] = None,
    version: Annotated[Optional[int], typer.Option("--version", min=1, help="Export this version (default: latest).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    sign: Annotated[bool, typer.Option("--sign", help="Sign the file too (with --key, or your default key).")] = False,
    key: KeyOpt = None,
    json_: Json = False,
) -> None:
    """Write a published (or imported) version as a template file, signed with --sign. Contains only the
    template: never your plans, check-ins, logbook or session history."""
    from practiceplan.errors import UsageError
    from practiceplan.fileio import output_target, write_output
    from practiceplan.render.templates import key_text

    service = _service(ctx)
    out_file = out_file or "-"
    output_target(out_file, replace=force)  # refuse an existing file before anything is recorded
    if key is not None and not sign:
        raise UsageError("--key goes with --sign", hint="practiceplan template export ID --sign --key FILE -o FILE")
    data, document, unpublished = service.export(template_id, version, sign=sign, key=key)
    number = document["template"]["templateVersion"]
    fingerprint = service.fingerprint(document)
    if unpublished:
        message(f"note: exported version {number}; your unpublished changes are not in it (run `template publish`)")
    if write_output(out_file, data, mode=0o644, replace=force).kind == "fd":
        return
    signed = f", signed with {key_text(fingerprint)}" if fingerprint else ""
    Output(json_).done({"path": out_file, "templateId": document["template"]["id"], "templateVersion": number,
                        "bytes": len(data), **({"fingerprint": fingerprint} if fingerprint else {})},
                       safe(f"Exported version {number} of \"{document['template'].get('title')}\" to {out_file}{signed}"))


@app.command("lint", epilog=example("practiceplan template lint scales.json", "practiceplan template lint scales.json --json"))
@handle_errors
def lint(ctx: typer.Context, file: FileArg, max_prompts: MaxPrompts = 5, json_: Json = False) -> None:
    """Check a template file as `import` would (exit 65 naming the first bad field) and report its signature."""
    report = _service(ctx).lint(file, _limits(max_prompts))

    def human() -> None:
        from practiceplan.render.templates import print_lint

        print_lint(report)

    Output(json_).show(report, human)


@app.command("preview", epilog=example(
    "practiceplan template preview scales.json",
    "practiceplan template preview scales.json --weeks 6 --param days=tu,th --start 'next monday'",
))
@handle_errors
def preview(
    ctx: typer.Context,
    file: FileArg,
    weeks: Annotated[int, typer.Option("--weeks", min=1, max=26, help="How many weeks to show.")] = 4,
    param: Params = None, start: StartDay = None, max_prompts: MaxPrompts = 5, json_: Json = False,
) -> None:
    """Show a calendar of the sessions a template file would create for you. Writes nothing."""
    from practiceplan import dates

    service = _service(ctx)
    p = service.s
    first = dates.parse_date(start, p.zone, p.now, "--start") if start else None
    result = service.preview(
        file, _params(param), weeks=weeks, start=first, limits=_limits(max_prompts),
        ask=_ask_param if stdin_is_tty() and not json_ else None,
    )

    def human() -> None:
        from practiceplan.render.templates import print_preview

        print_preview(result, p.zone, p.settings.week_start)

    Output(json_).show(result, human)


@app.command("keygen", epilog=example("practiceplan template keygen", "practiceplan template keygen --name lessons --out ~/keys/lessons.key"))
@handle_errors
def keygen(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Key name (file name in the data dir).")] = "tutor",
    out: Annotated[Optional[str], typer.Option("--out", metavar="PATH", help="Private key file (public key: PATH.pub).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key (the old one is lost).")] = False,
    json_: Json = False,
) -> None:
    """Create an Ed25519 key pair for signing your templates. The private key file is readable only by you
    and is never printed; share the public key with your learners."""
    pair = _service(ctx).keygen(out, name, force)

    def human() -> None:
        from practiceplan.render.templates import print_keygen

        print_keygen(pair.fingerprint, pair.public_text, pair.private_path, pair.public_path)

    Output(json_).show({"publicKey": pair.public_text, "fingerprint": pair.fingerprint,
                        "privateKeyPath": str(pair.private_path), "publicKeyPath": str(pair.public_path)}, human)


@app.command("sign", epilog=example("practiceplan template sign scales.json   # with the key `template keygen` made",
                                    "practiceplan template sign scales.json --key tutor.key -o scales.signed.json"))
@handle_errors
def sign(
    ctx: typer.Context,
    file: FileArg,
    key: KeyOpt = None,
    out_file: Annotated[Optional[str], typer.Option("-o", "--output", metavar="FILE", help="Write here ('-': stdout; default: in place).")] = None,
    max_prompts: MaxPrompts = 5,
    json_: Json = False,
) -> None:
    """Sign a template file (Ed25519 over its canonical JSON). Any later change to the file invalidates it."""
    if json_ and out_file in ("-", "/dev/stdout"):
        from practiceplan.errors import UsageError

        raise UsageError("--json and -o - would both write to stdout", hint="drop --json, or write to a file")
    target, fingerprint = _service(ctx).sign_file(file, key, out_file, _limits(max_prompts))

    def human() -> None:
        from practiceplan.render.templates import key_text

        if target.kind == "fd":
            message(f"Signed with {key_text(fingerprint)}")  # stdout carries the signed file
        else:
            _say(f"Signed {out_file or file} with {key_text(fingerprint)}")

    Output(json_).show({"path": str(target), "fingerprint": fingerprint}, human)


# ---------------------------------------------------------------------------------------------- learner


@app.command("import", epilog=example("practiceplan template import scales.json",
                                      "practiceplan template import my-own.json --allow-unsigned"))
@handle_errors
def import_(
    ctx: typer.Context,
    file: FileArg,
    allow_unsigned: Annotated[bool, typer.Option("--allow-unsigned", help="Accept a file without a trusted signature "
                                                                          "(personal templates); recorded on the template.")] = False,
    max_prompts: MaxPrompts = 5,
    json_: Json = False,
) -> None:
    """Import a template file. Everything is checked before anything is written; only files signed by a
    tutor key you trust are accepted (exit 77 otherwise, see `template trust add`)."""
    service = _service(ctx)
    result = service.import_file(file, allow_unsigned=allow_unsigned, limits=_limits(max_prompts))

    def human() -> None:
        from practiceplan.render.templates import key_text

        signer = result.signer
        source = f"signed by {key_text(signer['fingerprint'], signer['name'])}" if signer else "unsigned (--allow-unsigned)"
        short = service.store.short_id("plan_template", result.template["id"])
        words = {"imported": "Imported", "updated": "Updated to", "unchanged": "Already had", "stored-older": "Stored older"}
        _say(f'{words[result.outcome]} version {result.version} of template {short} "{result.template.get("title")}", {source}')

    Output(json_).show({"template": result.template, "outcome": result.outcome, "templateVersion": result.version,
                        "signedBy": result.signer, "allowUnsigned": result.allow_unsigned}, human)


@app.command("gallery", epilog=example("practiceplan template gallery", "practiceplan template gallery --instrument piano --level beginner",
                                       "practiceplan template gallery --search scales --json",
                                       "practiceplan template gallery --remote   # published on the sync server"))
@handle_errors
def gallery(
    ctx: typer.Context,
    instrument: Annotated[Optional[str], typer.Option("--instrument", help="Only this instrument.")] = None,
    level: Annotated[Optional[str], typer.Option("--level", help="Only this level.")] = None,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Tags containing this text.")] = None,
    search: Annotated[Optional[str], typer.Option("--search", metavar="TEXT", help="Search titles, descriptions, pieces, focus.")] = None,
    remote: RemoteOpt = False,
    json_: Json = False,
) -> None:
    """Templates you can adopt, with instrument, level, minutes, version and how often you adopted them.
    With --remote: the templates published on the sync server that your account may adopt (yours, and public
    ones by tutors) with the server's adoption counts (a `practiceplan serve` server; exit 69 on another)."""
    service = _service(ctx)
    if remote:
        items = service.gallery_remote(instrument=instrument, level=level, tag=tag, search=search)
    else:
        items = service.gallery(instrument=instrument, level=level, tag=tag, search=search)

    def human() -> None:
        from practiceplan.render.templates import print_gallery

        if remote:
            print_gallery(items, {}, empty="No published templates on the server for you to adopt.")
            return
        print_gallery(items, service.store.short_ids("plan_template", [i["template"]["id"] for i in items]))

    Output(json_).show({"templates": items}, human)


@app.command("adopt", epilog=example(
    "practiceplan template adopt 9d8e7f",
    "practiceplan template adopt 9d8e7f --param piece='Clair de lune — Debussy' --param days=mo,th --start 'next monday'",
    "practiceplan template adopt --remote template_Qm7pZ2rX9vK4tB8nW1sLd --title 'My scales'",
))
@handle_errors
def adopt(
    ctx: typer.Context,
    template_id: TemplateId,
    param: Params = None, start: StartDay = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Your plan's title (default: the template's).")] = None,
    remote: RemoteOpt = False,
    json_: Json = False,
) -> None:
    """Make a template your plan: all its sessions over the planning horizon, in your time zone. Missing
    required parameters are asked for on a terminal (an error otherwise). With --remote ID (the full id from
    `template gallery --remote`) the sync server adopts it: it checks the template is published and visible to
    you, and the plan it makes is synced here (no file or trusted key needed: the server is the authority)."""
    from practiceplan import dates

    service = _service(ctx)
    p = service.s
    first = dates.parse_date(start, p.zone, p.now, "--start") if start else None
    if remote:
        if param:
            from practiceplan.errors import UsageError

            raise UsageError("--param does not go with --remote: the server adopts a template as published",
                             hint="drop --param, or import the template file and adopt it here")
        result = service.adopt_remote(template_id, start=first, title=title)

        def said() -> None:
            plan = result["plan"]
            short = p.store.short_id("practice_plan", plan["id"]) if result["synced"] else plan["id"]
            _say(f'Adopted {template_id} on {result["remote"]} as plan {short} "{plan.get("title")}"')

        Output(json_).show(result, said)
        return
    plan, count, values = service.adopt(
        template_id, _params(param), start=first, title=title, ask=_ask_param if stdin_is_tty() else None
    )

    def human() -> None:
        short = p.store.short_id("practice_plan", plan["id"])
        _say(f'Adopted as plan {short} "{plan.get("title")}" ({plural(count, "session")}, {p.zone.key})')

    Output(json_).show({"plan": plan, "occurrencesChanged": count, "parameters": values}, human)


@app.command("upgrade", epilog=example(
    "practiceplan template upgrade 3f2a1c --dry-run",
    "practiceplan template upgrade 3f2a1c --mine",
    "practiceplan template upgrade 3f2a1c --theirs --json",
))
@handle_errors
def upgrade(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="An adopted plan (id or unique prefix).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    mine: Annotated[bool, typer.Option("--mine", help="On a clash keep your version.")] = False,
    theirs: Annotated[bool, typer.Option("--theirs", help="On a clash take the template's version.")] = False,
    to: Annotated[Optional[int], typer.Option("--to", min=1, help="Upgrade to this version (default: latest).")] = None,
    param: Params = None,
    json_: Json = False,
) -> None:
    """Apply a newer version of the plan's template: the template's changes are merged in, your own edits
    win, and a real clash (both changed the same thing) is asked about (or --mine / --theirs)."""
    from practiceplan.errors import UsageError

    if mine and theirs:
        raise UsageError("--mine and --theirs cannot be combined")
    service = _service(ctx)
    tty = stdin_is_tty() and not json_
    result = service.upgrade(
        plan_id, _params(param), dry_run=dry_run, prefer="mine" if mine else "theirs" if theirs else None,
        decide=_decide if tty and not dry_run else None, ask=_ask_param if tty else None, to_version=to,
    )
    changes = [c.as_json() for c in result.merge.changes]

    def human() -> None:
        if result.to_version == result.from_version:
            _say(f"Plan \"{result.plan.get('title')}\" already follows version {result.from_version} of its template")
            return
        from practiceplan.render.templates import print_upgrade

        verb = "Would upgrade" if dry_run else "Upgraded"
        base = "" if result.has_base else " (the old version is not stored: every difference is a clash)"
        print_upgrade(changes, f"{verb} \"{result.plan.get('title')}\" from version {result.from_version} to {result.to_version}{base}")
        if result.applied:
            from practiceplan.render.plans import sessions_text

            _say(sessions_text(result.sessions))

    Output(json_).show({
        "plan": result.plan, "templateId": result.template_id, "fromVersion": result.from_version,
        "toVersion": result.to_version, "changes": changes,
        "clashes": [c["path"] for c in changes if c["outcome"] == "clash"],
        "applied": result.applied, "dryRun": dry_run, "occurrencesChanged": result.occurrences_changed,
        "sessions": result.sessions,
    }, human)


# ---------------------------------------------------------------------------------------------- trust


@trust_app.command("add", epilog=example("practiceplan template trust add ed25519:3b6a27bc... --name 'Ms Lee'",
                                         "practiceplan template trust add lee.key.pub --name 'Ms Lee'"))
@handle_errors
def trust_add(
    ctx: typer.Context,
    public_key: Annotated[str, typer.Argument(metavar="PUBKEY", help="ed25519:<hex> as printed by keygen, or a .pub file.")],
    name: Annotated[str, typer.Option("--name", help="Who this key belongs to.")],
    json_: Json = False,
) -> None:
    """Trust a tutor's public key: templates signed with it can be imported."""
    key = _service(ctx).trust_add(public_key, name)

    def human() -> None:
        from practiceplan.render.templates import key_text

        _say(f"Trusted {key_text(key['fingerprint'], key['name'])}")

    Output(json_).show({"key": key}, human)


@trust_app.command("list", epilog=example("practiceplan template trust list", "practiceplan template trust list --json"))
@handle_errors
def trust_list(ctx: typer.Context, json_: Json = False) -> None:
    """List trusted tutor keys."""
    keys = _service(ctx).trust_list()

    def human() -> None:
        from practiceplan.render.templates import print_trusted

        print_trusted(keys)

    Output(json_).show({"keys": keys}, human)


@trust_app.command("remove", epilog=example("practiceplan template trust remove 'Ms Lee'", "practiceplan template trust remove 3b6a27bc"))
@handle_errors
def trust_remove(
    ctx: typer.Context,
    key_ref: Annotated[str, typer.Argument(metavar="NAME|FINGERPRINT", help="Key name or fingerprint prefix.")],
    json_: Json = False,
) -> None:
    """Stop trusting a tutor key (templates already imported stay)."""
    key = _service(ctx).trust_remove(key_ref)

    def human() -> None:
        from practiceplan.render.templates import key_text

        _say(f"Removed {key_text(key['fingerprint'], key['name'])}")

    Output(json_).show({"key": key}, human)

