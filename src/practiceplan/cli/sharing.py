"""Shared plans on the command line (docs/collaboration.md): `plan share|unshare|members|join|transfer`,
`comment`, `comments`, `students`. Membership changes go to the server (a `practiceplan serve` with capability
`sharing`) and are followed by a sync; comments are written here and sent by the next sync; `students` reads
what the last sync brought."""

from __future__ import annotations

import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from practiceplan.cli._common import Json, example, handle_errors, session, stdin_is_tty
from practiceplan.cli.plans import app as plan_app
from practiceplan.render.output import Output, message, safe

if TYPE_CHECKING:
    from practiceplan.services.session import Session
    from practiceplan.services.sharing import Sharing


class Level(str, Enum):
    view = "view"
    comment = "comment"
    edit = "edit"


PlanArg = Annotated[str, typer.Argument(metavar="PLAN", help="Plan id, unique id prefix or title prefix.")]
UserArg = Annotated[str, typer.Argument(metavar="USER", help="A user name on your sync server.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (needed when stdin is not a terminal).")]
Member = Annotated[Optional[str], typer.Option(
    "--member", help="Whose session OCC is, when several participants have one with that id (default: yours).",
    metavar="USER")]


def _sharing(p: Session) -> Sharing:
    from practiceplan.services.sharing import Sharing

    return Sharing(p)


def _warn(result: dict[str, Any]) -> None:
    if result.get("warning"):
        message(f"practiceplan: warning: {result['warning']}")


def _confirm(question: str, what: str, yes: bool, json_: bool) -> bool:
    """True to go ahead: --yes, or a yes on a terminal. Without a terminal (or with --json) --yes is required."""
    from practiceplan.errors import UsageError

    if yes:
        return True
    if not stdin_is_tty() or json_:
        raise UsageError(f"{what} asks first, and stdin is not a terminal", hint="pass --yes to go ahead without asking")
    if typer.confirm(question, default=False, err=True):
        return True
    typer.echo("Nothing changed.", err=True)
    return False


@plan_app.command("share", epilog=example(
    "practiceplan plan share Scales ana --as comment",
    "practiceplan plan share Scales ben --as edit        # change ben's level",
    "practiceplan plan share Scales --link --as view --expires 7d > invite.txt",
))
@handle_errors
def share(
    ctx: typer.Context,
    plan: PlanArg,
    user: Annotated[Optional[str], typer.Argument(metavar="[USER]", help="A user name on your sync server "
                                                                         "(not with --link).")] = None,
    as_: Annotated[Optional[Level], typer.Option("--as", help="Their level: view, comment or edit.")] = None,
    link: Annotated[bool, typer.Option("--link", help="Make a single-use invite token instead of naming a user.")] = False,
    expires: Annotated[Optional[str], typer.Option("--expires", help="How long an invite stays valid: 30m, 12h, 7d "
                                                                     "(default 7d, at most 90d).",
                                                   metavar="DURATION")] = None,
    json_: Json = False,
) -> None:
    """Share a plan you own with a user of your server at a level (view < comment < edit), or change their
    level; with --link, print a single-use invite token anyone on your server can redeem with `plan join`.

    Needs a `practiceplan serve` server (remote + login) and the plan synced there. After the change a sync runs;
    if it fails, the change stands and a warning says to run `practiceplan sync`."""
    from practiceplan.errors import UsageError

    if as_ is None:
        raise UsageError("say which level to give", hint="add --as view, --as comment or --as edit")
    p = session(ctx)
    if link:
        if user is not None:
            raise UsageError("give either USER or --link, not both",
                             hint=f"practiceplan plan share {plan} --link --as {as_.value}")
        invite = _sharing(p).invite(plan, as_.value, expires)
        if json_:
            Output(True).done(invite)
            return
        sys.stdout.write(invite["token"] + "\n")
        sys.stdout.flush()
        message(f"Invite to plan \"{safe(invite['title'])}\" as {invite['level']}, single use, valid until "
                f"{safe(invite['expiresAt'] or '?')}: the other user runs `practiceplan plan join TOKEN`")
        return
    if expires is not None:
        raise UsageError("--expires goes with --link", hint="e.g. practiceplan plan share PLAN --link --as view --expires 7d")
    if user is None:
        raise UsageError("say whom to share with", hint=f"practiceplan plan share {plan} USER --as {as_.value} "
                                                        "(or --link for an invite token)")
    result = _sharing(p).share(plan, user, as_.value)
    Output(json_).done(result, f"Shared plan \"{safe(result['title'])}\" with {safe(user)} as {as_.value}")
    _warn(result)


@plan_app.command("unshare", epilog=example(
    "practiceplan plan unshare Scales ana",
    "practiceplan plan unshare Scales ME --yes   # leave a plan shared with you",
))
@handle_errors
def unshare(ctx: typer.Context, plan: PlanArg, user: UserArg, yes: Yes = False, json_: Json = False) -> None:
    """Take a user's access away at once (owner), or leave a plan shared with you (USER is you). Asks first on
    a terminal."""
    p = session(ctx)
    sharing = _sharing(p)
    resolved = p.store.resolve("practice_plan", plan)
    leaving = user == sharing.me()
    question = (f"Leave plan \"{safe(resolved.get('title'))}\"? Its sessions and comments go from this device"
                if leaving else f"Remove {safe(user)} from plan \"{safe(resolved.get('title'))}\"?")
    if not _confirm(question, "plan unshare", yes, json_):
        return
    result = sharing.unshare(resolved["id"], user)
    line = (f"Left plan \"{safe(result['title'])}\"" if result["left"]
            else f"Removed {safe(user)} from plan \"{safe(result['title'])}\"")
    Output(json_).done(result, line)
    _warn(result)


@plan_app.command("members", epilog=example("practiceplan plan members Scales", "practiceplan plan members Scales --json"))
@handle_errors
def members(ctx: typer.Context, plan: PlanArg, json_: Json = False) -> None:
    """Show a shared plan's owner, its members and their levels (asks the server)."""
    from practiceplan.render.sharing import members_lines

    p = session(ctx)
    sharing = _sharing(p)
    result = sharing.members(plan)
    me = sharing.me()
    Output(json_).show(result, lambda: _echo(members_lines(result, me)))


@plan_app.command("join", epilog=example("practiceplan plan join ppi_...", "practiceplan plan join - < invite.txt"))
@handle_errors
def join(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(metavar="TOKEN", help="The invite token, or - to read it from stdin.")],
    json_: Json = False,
) -> None:
    """Accept an invite to a shared plan (single use); the plan arrives with the sync that follows."""
    from practiceplan.errors import UsageError

    if token == "-":
        token = sys.stdin.readline()
        if not token.strip():
            raise UsageError("no invite token on stdin", hint="e.g. practiceplan plan join - < invite.txt")
    result = _sharing(session(ctx)).join(token)
    title = f"\"{safe(result['title'])}\"" if result.get("title") else safe(result.get("planId"))
    Output(json_).done(result, f"Joined plan {title} of {safe(result.get('owner') or '?')} as {result.get('level')}")
    _warn(result)


@plan_app.command("transfer", epilog=example("practiceplan plan transfer Scales ana",
                                             "practiceplan plan transfer Scales ana --yes"))
@handle_errors
def transfer(ctx: typer.Context, plan: PlanArg, user: UserArg, yes: Yes = False, json_: Json = False) -> None:
    """Give a plan you own to another user: they own it from now on, you stay a member with edit access.
    Asks first on a terminal."""
    p = session(ctx)
    resolved = p.store.resolve("practice_plan", plan)
    if not _confirm(f"Give plan \"{safe(resolved.get('title'))}\" to {safe(user)}? You stay an edit member",
                    "plan transfer", yes, json_):
        return
    result = _sharing(p).transfer(resolved["id"], user)
    Output(json_).done(result, f"Plan \"{safe(result['title'])}\" now belongs to {safe(user)}; you keep edit access")
    _warn(result)


@handle_errors
def comment(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="OCC", help="A session id or prefix (yours or another "
                                                              "participant's); with --plan, the comment text.")],
    text: Annotated[Optional[str], typer.Argument(metavar="TEXT", help="The comment (one line, up to 4000 "
                                                                       "characters).")] = None,
    plan: Annotated[Optional[str], typer.Option("--plan", help="Comment on this plan itself, not a session.",
                                                metavar="PLAN")] = None,
    member: Member = None,
    json_: Json = False,
) -> None:
    """Comment on a session of a shared plan (yours or another participant's) or, with --plan, on the plan. Needs
    level comment or above; written here and sent at the next `practiceplan sync`."""
    from practiceplan.errors import UsageError

    if plan is not None:
        if text is not None:
            raise UsageError("with --plan give only the text", hint=f"practiceplan comment --plan {plan} \"TEXT\"")
        if member is not None:
            raise UsageError("--member names a session's participant; it does not go with --plan",
                             hint="leave out --member")
        occ, body = "", target
    elif text is None:
        raise UsageError("give the session and the text", hint="practiceplan comment OCC \"TEXT\" (or --plan PLAN \"TEXT\")")
    else:
        occ, body = target, text
    p = session(ctx)
    result = _sharing(p).comment(occ, body, plan_ref=plan, member=member)
    doc = result["comment"]
    where = f"session {doc['occurrenceId'][9:15]}" if doc.get("occurrenceId") else "the plan"
    lines = [f"Comment added on {where} of \"{safe(result['planTitle'])}\"; it is sent at the next `practiceplan sync`"]
    Output(json_).done(result, *lines)


@handle_errors
def comments(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="OCC|PLAN", help="A plan (id, prefix or title) or a session id.")],
    member: Member = None,
    json_: Json = False,
) -> None:
    """List the comments on a plan and its sessions, or on one session, oldest first (what the last sync
    brought plus your own not sent yet)."""
    from practiceplan.render.sharing import comment_lines

    p = session(ctx)
    data = _sharing(p).comments_on(ref, member)
    Output(json_).show(data, lambda: _echo(comment_lines(data, p.zone)))


@handle_errors
def students(ctx: typer.Context, json_: Json = False) -> None:
    """For a tutor: everyone who takes part in a plan with you, with their plans, adherence over the last 30
    days, current streak and last practice, from what they shared (read here, from the last sync)."""
    from practiceplan.render.sharing import student_lines

    found = _sharing(session(ctx)).students()
    Output(json_).show({"students": found}, lambda: _echo(student_lines(found)))


def _echo(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("comment", epilog=example(
        'practiceplan comment 9f2c1a "Slower on bar 12"',
        'practiceplan comment 9f2c1a "Nice tone" --member ben   # on ben\'s session',
        'practiceplan comment --plan Scales "New fingering from next week"',
    ))(comment)
    app.command("comments", epilog=example("practiceplan comments Scales", "practiceplan comments 9f2c1a --json"))(comments)
    app.command("students", epilog=example("practiceplan students", "practiceplan students --json"))(students)
