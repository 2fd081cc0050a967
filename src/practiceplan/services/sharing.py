"""Shared plans (docs/collaboration.md): share, unshare, invite, join, transfer, members; comments; the local
guards on changing a plan shared with you; per-member adherence and `students`.

The server is the authority on who may do what; this module asks it (sync/client.py) for every membership
change and then syncs, so the local copy follows. What the last sync brought is read locally: the sharing list
(meta ``sync.sharing``), the caller's server user name (meta ``sync.user``), comments (``plan_comments``) and
other participants' sessions (``shared_sessions``). Reads never write; a comment is written in one transaction
and queued for the next sync.
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Any

from practiceplan.domain.models import iso_z
from practiceplan.store.sharing import comments, my_name, shared_sessions, sharing_list
from practiceplan.errors import (
    AmbiguousIdError,
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
    PracticePlanError,
    UsageError,
)

if TYPE_CHECKING:
    from practiceplan.services.insights import Insights
    from practiceplan.services.session import Session
    from practiceplan.sync.client import Client

LEVELS = ("view", "comment", "edit")
RANK = {"view": 1, "comment": 2, "edit": 3, "owner": 4}
MAX_COMMENT = 4000
DEFAULT_EXPIRES = 7 * 86_400
MAX_EXPIRES = 90 * 86_400
STUDENT_DAYS = 30
SYNC_FIRST = "sync first: practiceplan sync"
SYNC_LATER = "run `practiceplan sync` to bring this device up to date"


# --------------------------------------------------------------------------- local reads (what the last sync saw)
# sharing_list, my_name, comments and shared_sessions are store/sharing.py's (the engine writes what they read)

def _members(value: object) -> list[dict[str, str]]:
    items = value if isinstance(value, list) else []
    return [{"user": m["user"], "level": m.get("level") if m.get("level") in LEVELS else "view"}
            for m in items if isinstance(m, dict) and isinstance(m.get("user"), str) and m["user"]]


def plan_sharing(conn: Any, plan: dict[str, Any], *, me: str | None = None,
                 listed: dict[str, dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """``{owner, level (yours), members}`` of a shared plan, or None when it is not shared (your own plan with no
    members). From the sharing list when it names the plan, else from the plan's ``metadata.sharing``."""
    me = me if me is not None else my_name(conn)
    listed = listed if listed is not None else {e["planId"]: e for e in sharing_list(conn)}
    entry = listed.get(plan["id"])
    meta = (plan.get("metadata") or {}).get("sharing")
    source = entry if entry is not None else meta if isinstance(meta, dict) else None
    if source is None:
        return None
    owner = source.get("owner") if isinstance(source.get("owner"), str) else None
    members = _members(source.get("members"))
    level = entry.get("level") if entry is not None and entry.get("level") in RANK else None
    if level is None:
        mine = next((m["level"] for m in members if me is not None and m["user"] == me), None)
        level = "owner" if me is None or owner in (None, me) else mine or "view"
    if level == "owner" and not members:
        return None
    return {"owner": owner, "level": level, "members": members}


def level_of(conn: Any, plan_id: str) -> str | None:
    """Your level on a plan: ``owner`` (your own plan, shared or not), ``edit``, ``comment`` or ``view``; None when
    the plan is not here."""
    row = conn.execute("SELECT doc FROM practice_plans WHERE id = ?", (plan_id,)).fetchone()
    if row is None:
        return None
    shared = plan_sharing(conn, json.loads(row[0]))
    return shared["level"] if shared else "owner"


# --------------------------------------------------------------------------- the guards

def check_can_change(session: Session, plan: dict[str, Any], action: str = "edit") -> None:
    """Refuse (NotAuthorisedError, exit 77, nothing written) to change a plan shared with you below ``edit``, or
    to ``delete`` (or restore) one you do not own. Your own sessions of it are never refused."""
    conn = session.store.conn
    shared = plan_sharing(conn, plan)
    if shared is None or shared["level"] == "owner":
        return
    title = str(plan.get("title") or plan["id"])
    owner = shared["owner"] or "the owner"
    me = my_name(conn) or "YOUR-NAME"
    leave = f"practiceplan plan unshare {_quoted(title)} {me}"
    if action == "delete":
        raise NotAuthorisedError(f"only the owner ({owner}) can delete plan '{title}'; it is shared with you "
                                 f"({shared['level']})", hint=f"to stop taking part, leave it: {leave}")
    if RANK[shared["level"]] < RANK["edit"]:
        raise NotAuthorisedError(f"plan '{title}' is shared with you at level {shared['level']}: changing it needs "
                                 "edit", hint=f"ask the owner ({owner}) for edit access, or leave it: {leave}")


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text)


def parse_expires(text: str | None) -> int:
    """``30m``, ``12h``, ``7d`` (domain/durations.py) -> seconds (default 7 days, at most 90 days)."""
    from practiceplan.domain.durations import parse_minutes

    if text is None:
        return DEFAULT_EXPIRES
    seconds = parse_minutes(text, "--expires", maximum=10**7) * 60
    if not 60 <= seconds <= MAX_EXPIRES:
        raise InvalidInputError(f"--expires must be between 1 minute and 90 days, not {text.strip()}",
                                hint="e.g. --expires 7d (at most 90d)")
    return seconds


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise UsageError(f"--as must be view, comment or edit, not '{level}'", hint="e.g. --as comment")
    return level


def check_user(user: str) -> str:
    name = (user or "").strip()
    if not name or len(name) > 200 or any(c.isspace() or not c.isprintable() for c in name):
        raise UsageError(f"'{user}' is not a user name", hint="give the name of a user of your server, e.g. ana")
    return name


# --------------------------------------------------------------------------- the service

class Sharing:
    def __init__(self, session: Session) -> None:
        self.s = session

    @property
    def conn(self) -> Any:
        return self.s.store.conn

    def with_sharing(self, plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``plans`` with their ``sharing`` (see :func:`with_sharing`), for `plan list`."""
        return with_sharing(self.conn, plans)

    def me(self) -> str | None:
        return my_name(self.conn)

    # ------------------------------------------------------------------ server actions

    def _plan(self, ref: str) -> dict[str, Any]:
        return self.s.store.resolve("practice_plan", ref)

    def _on_server(self, plan: dict[str, Any]) -> None:
        """A plan must have been synced with this remote before it can be shared."""
        from practiceplan.store import sync as st

        url = self.s.remote.require_url()  # no remote at all: say how to set one (exit 2), not "sync first"
        bound = st.get_meta(self.conn, "bound_remote")
        known = st.states(self.conn, "practice_plan", [plan["id"]])
        if bound != url or not known:
            raise InvalidInputError(f"plan '{plan.get('title')}' is not on the server yet", hint=SYNC_FIRST)

    def _client(self) -> Client:
        """A client for the remote, after checking the server supports shared plans (exit 69 otherwise)."""
        from practiceplan.sync.client import SHARING_CAPABILITY, no_sharing

        client = self.s.remote.client()
        try:
            status = client.status()
            caps = status.get("capabilities")
            if not isinstance(caps, list) or SHARING_CAPABILITY not in caps:
                raise no_sharing(client.host)
        except BaseException:
            client.close()
            raise
        return client

    def _require_owner(self, plan: dict[str, Any], what: str) -> None:
        shared = plan_sharing(self.conn, plan)
        if shared is not None and shared["level"] != "owner":
            raise NotAuthorisedError(
                f"only the plan's owner ({shared['owner'] or 'unknown'}) can {what} plan '{plan.get('title')}'",
                hint=f"it is shared with you at level {shared['level']}; ask the owner")

    def _synced(self, result: dict[str, Any]) -> dict[str, Any]:
        """Sync so the local copy reflects the change; a failed sync is a warning, never a failure."""
        try:
            self.s.sync.run()
        except PracticePlanError as exc:
            result["synced"] = False
            result["warning"] = f"the change is made on the server, but syncing it here failed ({exc.message}); " \
                                f"{SYNC_LATER}"
        else:
            result["synced"] = True
            result["warning"] = None
        return result

    def members(self, ref: str) -> dict[str, Any]:
        """Owner, members and levels of a plan, as the server has them now."""
        plan = self._plan(ref)
        self._on_server(plan)
        with self._client() as client:
            found = client.members(plan["id"])
        return _members_result(plan, found)

    def share(self, ref: str, user: str, level: str) -> dict[str, Any]:
        """Give ``user`` access at ``level`` (or change their level); owner only."""
        plan = self._plan(ref)
        user, level = check_user(user), check_level(level)
        self._require_owner(plan, "share")
        self._on_server(plan)
        with self._client() as client:
            found = client.share(plan["id"], user, level)
        return self._synced({**_members_result(plan, found), "user": user, "granted": level})

    def invite(self, ref: str, level: str, expires: str | None) -> dict[str, Any]:
        """A single-use invite token for ``level``, valid ``expires`` (default 7 days); owner only. Nothing changes
        locally, so no sync runs."""
        plan = self._plan(ref)
        level, seconds = check_level(level), parse_expires(expires)
        self._require_owner(plan, "invite to")
        self._on_server(plan)
        with self._client() as client:
            found = client.invite(plan["id"], level, seconds)
        token = found.get("token")
        if not isinstance(token, str) or not token.strip():
            raise InvalidInputError("the server answered the invite without a token", hint="try again")
        return {"planId": plan["id"], "title": plan.get("title"), "token": token, "level": found.get("level", level),
                "expiresAt": found.get("expiresAt")}

    def unshare(self, ref: str, user: str) -> dict[str, Any]:
        """Remove ``user``'s access (owner), or leave the plan (a member removing itself)."""
        plan = self._plan(ref)
        user = check_user(user)
        shared = plan_sharing(self.conn, plan)
        me = self.me()
        level = shared["level"] if shared else "owner"
        if level == "owner" and me is not None and user == me:
            raise InvalidInputError(f"you own plan '{plan.get('title')}' and cannot leave it",
                                    hint="give it to someone first (practiceplan plan transfer PLAN USER), or delete it")
        if level != "owner" and user != me:
            raise NotAuthorisedError(
                f"only the plan's owner ({(shared or {}).get('owner') or 'unknown'}) can remove others from "
                f"plan '{plan.get('title')}'", hint=f"to leave it yourself: practiceplan plan unshare "
                                                   f"{_quoted(str(plan.get('title')))} {me or 'YOUR-NAME'}")
        self._on_server(plan)
        with self._client() as client:
            found = client.unshare(plan["id"], user)
        left = found.get("left") is True
        result = ({"planId": plan["id"], "title": plan.get("title"), "left": True, "user": user} if left
                  else {**_members_result(plan, found), "left": False, "user": user})
        return self._synced(result)

    def transfer(self, ref: str, user: str) -> dict[str, Any]:
        """Make ``user`` the owner (you stay an edit member); owner only."""
        plan = self._plan(ref)
        user = check_user(user)
        self._require_owner(plan, "transfer")
        if self.me() is not None and user == self.me():
            raise InvalidInputError("you already own this plan", hint="name another user of your server")
        self._on_server(plan)
        with self._client() as client:
            found = client.transfer(plan["id"], user)
        return self._synced({**_members_result(plan, found), "user": user})

    def join(self, token: str) -> dict[str, Any]:
        """Accept an invite (single use); the plan arrives with the sync that follows."""
        token = (token or "").strip()
        if not token or len(token) > 512 or any(c.isspace() or not c.isprintable() for c in token):
            raise UsageError("that is not an invite token", hint="give the token the owner sent (ppi_...), or - to "
                                                                 "read it from stdin")
        with self._client() as client:
            found = client.accept_invite(token)
        plan_id = found.get("planId")
        result = self._synced({"planId": plan_id, "owner": found.get("owner"), "level": found.get("level"),
                               "title": None})
        plan = self.s.store.get("practice_plan", plan_id) if isinstance(plan_id, str) else None
        result["title"] = plan.get("title") if plan else None
        return result

    # ------------------------------------------------------------------ comments

    def find_session(self, ref: str, member: str | None = None) -> tuple[dict[str, Any], str | None]:
        """A session by id or prefix: one of yours (``member`` None or your name), else another participant's
        (from the last sync's shared sessions). Returns (session, whose: None for yours)."""
        me = self.me()
        if member is None or member == me:
            try:
                return self.s.store.resolve("plan_occurrence", ref), None
            except AmbiguousIdError:
                raise
            except NotFoundError:
                if member is not None:
                    raise
        found = self._shared_matches(ref.strip(), member)
        if not found:
            whose = f"{member}'s sessions" if member else "your sessions or those shared with you"
            raise NotFoundError(f"no session matches '{ref}' in {whose}",
                                hint="list yours with `practiceplan occurrences`; others' arrive with `practiceplan sync`")
        if len(found) > 1:
            raise AmbiguousIdError(ref, [f"{m}:{i[9:21] if i.startswith('plan_occ_') else i}" for m, i, _ in found])
        whose_name, _id, doc = found[0]
        return {**json.loads(doc), "member": whose_name}, whose_name

    def _shared_matches(self, ref: str, member: str | None) -> list[tuple[str, str, str]]:
        if not ref:
            return []
        extra, params = ("AND member = ?", [member]) if member else ("", [])
        for candidate in dict.fromkeys((ref, "plan_occ_" + ref)):
            rows = self.conn.execute(f"SELECT member, id, doc FROM shared_sessions WHERE id = ? {extra} "
                                     "ORDER BY member", [candidate, *params]).fetchall()
            if rows:
                return [tuple(r) for r in rows]
        rows = []
        for candidate in dict.fromkeys((ref, "plan_occ_" + ref)):
            hi = candidate[:-1] + chr(ord(candidate[-1]) + 1)
            rows += self.conn.execute(f"SELECT member, id, doc FROM shared_sessions WHERE id >= ? AND id < ? {extra} "
                                      "ORDER BY member, id LIMIT 50", [candidate, hi, *params]).fetchall()
        return sorted({(r[0], r[1]): tuple(r) for r in rows}.values())

    def comment(self, target: str, text: str, *, plan_ref: str | None = None,
                member: str | None = None) -> dict[str, Any]:
        """Write a comment on a session (yours or another participant's) or, with ``plan_ref``, on the plan; it is
        queued and sent at the next sync. Needs level comment or above."""
        from practiceplan.domain.models import clean_line, new_id

        text = clean_line(text, "comment", max_len=MAX_COMMENT)
        occurrence: dict[str, Any] | None = None
        whose: str | None = None
        if plan_ref is not None:
            plan = self._plan(plan_ref)
        else:
            occurrence, whose = self.find_session(target, member)
            found = self.s.store.get("practice_plan", occurrence.get("planId") or "")
            if found is None:
                raise NotFoundError(f"the plan of session '{target}' is not on this device",
                                    hint="run `practiceplan sync` to fetch it")
            plan = found
        shared = plan_sharing(self.conn, plan)
        level = shared["level"] if shared else "owner"
        if RANK[level] < RANK["comment"]:
            raise NotAuthorisedError(
                f"plan '{plan.get('title')}' is shared with you at level {level}: commenting needs comment",
                hint=f"ask the owner ({(shared or {}).get('owner') or 'unknown'}) for comment access")
        me = self.me()
        stamp = iso_z(self.s.now)
        doc: dict[str, Any] = {"id": new_id("comment"), "planId": plan["id"],
                               "occurrenceId": occurrence["id"] if occurrence else None,
                               "occurrenceOwner": (whose or me) if occurrence else None,
                               "text": text, "author": me, "createdAt": stamp, "updatedAt": stamp}
        with self.s.store.write():
            self.s.store.save("plan_comment", doc, stamp)
        return {"comment": doc, "planTitle": plan.get("title"), "shared": shared is not None}

    def comments_on(self, ref: str, member: str | None = None) -> dict[str, Any]:
        """Every comment on a plan and its sessions (REF a plan), or on one session (REF a session), oldest first,
        each with ``session`` (the session's short id, None on the plan itself) and ``sessionOwner``."""
        plan, occurrence = self._target(ref, member)
        found = comments(self.conn, plan["id"], occurrence["id"] if occurrence else None)
        if occurrence is not None:
            whose = occurrence.get("member")  # None: your own session (its comments name you, or no one)
            found = [c for c in found if c.get("occurrenceOwner") == whose
                     or (whose is None and c.get("occurrenceOwner") in (None, self.me()))]
        ids = [c["occurrenceId"] for c in found if c.get("occurrenceId")]
        short = {i: (i[len("plan_occ_"):len("plan_occ_") + 6] if i.startswith("plan_occ_") else i[:6]) for i in ids}
        short.update(self.s.store.short_ids("plan_occurrence", [i for i in ids if self.s.store.get(
            "plan_occurrence", i, include_deleted=True)]))
        items = [{**c, "session": short.get(c.get("occurrenceId") or ""), "sessionOwner": c.get("occurrenceOwner")}
                 for c in found]
        return {"planId": plan["id"], "title": plan.get("title"),
                "occurrenceId": occurrence["id"] if occurrence else None, "comments": items}

    def _target(self, ref: str, member: str | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        text = ref.strip()
        if member is None and not text.startswith("plan_occ_"):
            try:
                return self._plan(text), None
            except AmbiguousIdError:
                raise
            except NotFoundError:
                pass
        try:
            occurrence, _whose = self.find_session(text, member)
        except NotFoundError as exc:
            if member is None and not text.startswith("plan_occ_"):
                raise NotFoundError(f"no plan or session matches '{ref}'",
                                    hint="list plans with `practiceplan plan list`; a plan shared with you arrives "
                                         "with `practiceplan sync`") from exc
            raise
        plan = self.s.store.get("practice_plan", occurrence.get("planId") or "", include_deleted=True)
        if plan is None:
            raise NotFoundError(f"the plan of session '{ref}' is not on this device", hint="run `practiceplan sync`")
        return plan, occurrence

    # ------------------------------------------------------------------ adherence of others

    def students(self) -> list[dict[str, Any]]:
        """Every other participant of a plan you take part in: their plans, adherence over the last 30 days,
        current streak (days) and last practice, from what they shared (the last sync). Sorted by name."""
        insights = self.s.insights
        listed = sharing_list(self.conn)
        me = self.me()
        plans = {p["id"]: p for p in self.s.store.plans(include_deleted=True)}
        people: dict[str, set[str]] = {}
        for entry in listed:
            for name in [entry.get("owner"), *(m["user"] for m in _members(entry.get("members")))]:
                if isinstance(name, str) and name and name != me:
                    people.setdefault(name, set()).add(entry["planId"])
        sessions = shared_sessions(self.conn)
        for doc in sessions:
            people.setdefault(doc["member"], set()).add(doc.get("planId") or "")
        today = _clock(insights, []).day(insights.now_ms)  # (not insights.today: that would extend horizons)
        result = []
        for name in sorted(people, key=lambda n: (n.casefold(), n)):
            mine = [d for d in sessions if d["member"] == name]
            row = member_row(insights, name, mine, first_day=today - (STUDENT_DAYS - 1), last_day=today)
            titles = sorted({str(plans[pid].get("title") or pid) for pid in people[name] if pid in plans},
                            key=str.casefold)
            result.append({"user": name, "plans": titles, "planIds": sorted(p for p in people[name] if p),
                           "adherence": row["adherence"], "percent": row["percent"],
                           "currentStreak": row["currentStreak"], "lastPractice": row["lastPractice"],
                           "completed": row["completed"], "missed": row["missed"]})
        return result


def _members_result(plan: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    members = found.get("members") if isinstance(found.get("members"), list) else []
    return {"planId": found.get("planId") or plan["id"], "title": plan.get("title"), "owner": found.get("owner"),
            "level": found.get("level"),
            "members": [{"user": m.get("user"), "level": m.get("level"), "addedAt": m.get("addedAt")}
                        for m in members if isinstance(m, dict) and isinstance(m.get("user"), str)]}


# --------------------------------------------------------------------------- per-member adherence (domain functions)

def member_row(insights: Insights, member: str, sessions: list[dict[str, Any]], *, first_day: int | None,
               last_day: int | None) -> dict[str, Any]:
    """Adherence of one participant from their shared sessions, judged exactly like your own (deadlines, flex,
    'before the plan existed'): ``due`` is completed + missed in the range, ``adherence`` completed / due,
    ``currentStreak`` consecutive days (ending today or yesterday) with a completed session, ``lastPractice``
    the latest such day."""
    from practiceplan.domain import insights as an
    from practiceplan.domain.models import counts_from_by_plan, parse_instant

    plans = insights.plans
    facts = []
    for doc in sessions:
        start = parse_instant(doc.get("scheduledStart"))
        if start is None or doc.get("deletedAt"):
            continue
        end = parse_instant(doc.get("scheduledEnd"))
        start_ms = int(start.timestamp() * 1000)
        end_ms = int(end.timestamp() * 1000) if end else None
        if not an.RANGE_LO_MS <= start_ms < an.RANGE_HI_MS:
            continue
        facts.append(an.OccFact(str(doc.get("id")), str(doc.get("planId") or ""), start_ms, end_ms,
                                str(doc.get("status") or "scheduled"), doc.get("flexWindow")))
    counts_from = {pid: int(t.timestamp() * 1000) for pid, t in counts_from_by_plan(
        [plans[f.plan_id] for f in facts if f.plan_id in plans], member).items()}  # from when they joined
    clock = _clock(insights, facts)
    judged = an.judge(facts, insights.now_ms, clock, week_start=insights.s.settings.week_start,
                      counts_from=counts_from)
    counts = an.tally(judged, first_day, last_day).as_json()
    done_days = {item.day for item in judged if item.state == an.COMPLETED}
    today = clock.day(insights.now_ms)
    current, _longest = an.day_streak({d for d in done_days if d <= today}, today)
    last = max((d for d in done_days if d <= today), default=None)
    return {"member": member, "due": counts["completed"] + counts["missed"], "completed": counts["completed"],
            "missed": counts["missed"], "skipped": counts["skipped"], "adherence": counts["adherence"],
            "percent": counts["percent"], "currentStreak": current,
            "lastPractice": an.day_date(last).isoformat() if last is not None else None}


def _clock(insights: Insights, facts: list[Any]) -> Any:
    from practiceplan.domain import insights as an

    starts = [f.start_ms for f in facts]
    lo = min([insights.now_ms, *starts]) - 40 * an.DAY_MS
    hi = max([insights.now_ms, *starts]) + 40 * an.DAY_MS
    return an.DayClock(insights.s.zone, lo, hi)


def member_stats(insights: Insights, plan_ids: list[str], first: date | None,
                 last: date | None) -> dict[str, list[dict[str, Any]]]:
    """For each of ``plan_ids`` you own that is shared: one adherence row per member (in `stats`' range), sorted
    by name. Plans you do not own, or not shared, are left out. No query when nothing is shared."""
    from practiceplan.domain import insights as an

    conn = insights.s.store.conn
    listed = {e["planId"]: e for e in sharing_list(conn)}
    me = my_name(conn)
    owned: dict[str, list[str]] = {}
    for pid in plan_ids:
        plan = insights.plans.get(pid)
        if plan is None or (pid not in listed and not (plan.get("metadata") or {}).get("sharing")):
            continue
        shared = plan_sharing(conn, plan, me=me, listed=listed)
        if shared is not None and shared["level"] == "owner":
            owned[pid] = [m["user"] for m in shared["members"]]
    if not owned:
        return {}
    by_member: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for doc in shared_sessions(conn, owned):
        by_member.setdefault((doc.get("planId") or "", doc["member"]), []).append(doc)
    first_day = an.day_number(first) if first else None
    last_day = an.day_number(last) if last else None
    result: dict[str, list[dict[str, Any]]] = {}
    for pid, names in owned.items():
        everyone = sorted({*names, *(m for p, m in by_member if p == pid)} - {me}, key=lambda n: (n.casefold(), n))
        result[pid] = [member_row(insights, name, by_member.get((pid, name), []), first_day=first_day,
                                  last_day=last_day) for name in everyone]
    return result


def with_sharing(conn: Any, plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``plans``, each with ``sharing``: ``{owner, level, members}`` when shared (as :func:`plan_sharing`), else
    None (`plan list`)."""
    me = my_name(conn)
    listed = {e["planId"]: e for e in sharing_list(conn)}
    return [{**plan, "sharing": plan_sharing(conn, plan, me=me, listed=listed)} for plan in plans]
