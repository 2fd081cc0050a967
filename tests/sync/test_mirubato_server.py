"""The Mirubato-mode test server against the real thing.

1. Replays the 13 recorded exchanges (``tests/sync/recorded/``, a copy of
   ``shared/reference/mirubato-recorded/``) in order against one fresh server and compares status,
   ``x-*`` headers and bodies. Two ways:

   * *scripted*: the server's id/token generator is fed the values Mirubato generated, in the order the
     recording shows them, and its clock is set to the recorded server times, so every body must be
     **equal** to the recorded one. A token generated where Mirubato returned a stored one (or the
     reverse) shifts the queue and fails the comparison.
   * *masked*: random ids/tokens; server-generated values (``sync_...``, adopted ``plan_...`` ids) are
     compared through a bijection, so "the replay returns the same token" and "status shows the last
     push's token" are still checked.

2. Every fault kind, through a real httpx client.
3. Extended mode: incremental pull with tombstones and paging, conditional push, 422 on key reuse.
4. Spot checks of quirks the recordings do not cover (§ numbers refer to sync-protocol.md).
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sync.mirubato import (
    FixedClock,
    ServerState,
    make_app,
    mirubato_checksum,
    normalize_score_id,
    recurrence_rule_is_valid,
)
from tests.sync.server import serve

RECORDED = Path(__file__).with_name("recorded")
START = "2026-12-05T00:01:02.600Z"  # the recording ran within 00:01:02 UTC (README)
GENERATED = re.compile(r"^(plan_occ_|plan_|sync_)([A-Za-z0-9_-]{21})$")
PUSH, PULL, STATUS, BATCH, ADOPT = ("/api/sync/push", "/api/sync/pull", "/api/sync/status",
                                   "/api/sync/batch", "/api/templates/adopt")


# ---------------------------------------------------------------------------------------------------------
# replay machinery
# ---------------------------------------------------------------------------------------------------------


def recorded_steps() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(RECORDED.glob("[0-9][0-9]-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out += [(path.name, step) for step in (data if isinstance(data, list) else [data])]
    return out


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for x in v.values() for s in _strings(x)]
    if isinstance(v, list):
        return [s for x in v for s in _strings(x)]
    return []


def generated_values(steps: list[tuple[str, dict[str, Any]]]) -> tuple[set[str], dict[str, deque[str]]]:
    """Values the server made up: strings shaped like ``<prefix><21 nanoid chars>`` that first appear in
    a response (never in an earlier request). Returns them and, per prefix, their suffixes in order."""
    seen: set[str] = set()
    generated: set[str] = set()
    queues: dict[str, deque[str]] = {"sync_": deque(), "plan_": deque(), "plan_occ_": deque()}
    for _, step in steps:
        seen.update(_strings(step["request"]["body"]))
        for s in _strings(step["response"]["body"]):
            m = GENERATED.match(s)
            if m and s not in seen:
                generated.add(s)
                queues[m.group(1)].append(m.group(2))
            seen.add(s)
    return generated, queues


def user_of(step: dict[str, Any]) -> str:
    return "user_rec2" if step["name"].startswith("rec2-") else "user_rec1"


def request_headers(state: ServerState, step: dict[str, Any]) -> dict[str, str]:
    """Recorded request headers with the redacted tokens replaced by equivalent ones."""
    headers = dict(step["request"]["headers"])
    auth = headers.get("Authorization")
    user = user_of(step)
    replacements = {
        "Bearer <token>": lambda: "Bearer " + state.token_for(user),
        "Bearer <token signed with a different secret>":
            lambda: "Bearer " + state.token_for(user, secret="some-other-secret"),
        "Bearer <expired token>": lambda: "Bearer " + state.token_for(user, expires_in=-60),
        "bearer <token>": lambda: "bearer " + state.token_for(user),
    }
    if auth in replacements:
        headers["Authorization"] = replacements[auth]()
    elif auth is not None:
        assert "<" not in auth, f"unhandled redacted header {auth!r}"
    return headers


def recorded_server_time(body: Any) -> str | None:
    """The server time a recorded response reveals (pull ``timestamp``, adoption ``createdAt``)."""
    if isinstance(body, dict):
        if isinstance(body.get("timestamp"), str):
            return body["timestamp"]
        if isinstance(body.get("plan"), dict):
            return body["plan"]["createdAt"]
    return None


class Masked:
    """Compare a recorded value with an actual one; generated values must correspond one to one."""

    def __init__(self, generated: set[str]) -> None:
        self.generated = generated
        self.forward: dict[str, str] = {}
        self.backward: dict[str, str] = {}

    def check(self, rec: Any, act: Any, where: str) -> None:
        if isinstance(rec, str) and rec in self.generated:
            m = GENERATED.match(rec)
            assert isinstance(act, str) and m and act.startswith(m.group(1)) and GENERATED.match(act), \
                f"{where}: {act!r} is not a generated {m.group(1) if m else ''} value"
            assert self.forward.setdefault(rec, act) == act, \
                f"{where}: recorded {rec} was {self.forward[rec]} before, now {act}"
            assert self.backward.setdefault(act, rec) == rec, \
                f"{where}: {act} already stood for {self.backward[act]}, now for {rec}"
            return
        if isinstance(rec, dict):
            assert isinstance(act, dict), f"{where}: expected an object, got {act!r}"
            assert set(rec) == set(act), f"{where}: keys differ: {sorted(set(rec) ^ set(act))}"
            for k in rec:
                self.check(rec[k], act[k], f"{where}.{k}")
            return
        if isinstance(rec, list):
            assert isinstance(act, list) and len(act) == len(rec), f"{where}: {act!r} != {rec!r}"
            for i, (r, a) in enumerate(zip(rec, act, strict=True)):
                self.check(r, a, f"{where}[{i}]")
            return
        assert rec == act and type(rec) is type(act), f"{where}: {act!r} != {rec!r}"


def trim_like_recording(rec: dict[str, Any], act: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two recorded pulls were trimmed by the recorder (``note``): compare only what they kept. A key
    ``"entries(only the id shared with user_rec2)"`` keeps just the actual entries with those ids."""
    if "note" not in rec:
        return rec, act
    rec = {k: v for k, v in rec.items() if k != "note"}
    trimmed = {}
    for key, value in rec.items():
        base = key.split("(", 1)[0]
        if base != key:
            ids = {item["id"] for item in value}
            trimmed[key] = [item for item in act[base] if item["id"] in ids]
        else:
            trimmed[key] = act.get(key)
    return rec, trimmed


def replay(server: Any, *, scripted: bool) -> int:
    state: ServerState = server.state
    steps = recorded_steps()
    generated, queues = generated_values(steps)
    clock = FixedClock(START)
    state.clock = clock
    if scripted:
        state.id_source = lambda prefix: queues[prefix].popleft()
    masked = Masked(generated if not scripted else set())
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for fname, step in steps:
            where = f"{fname}:{step['name']}"
            req, rec = step["request"], step["response"]
            when = recorded_server_time(rec["body"])
            if when:
                clock.set(when)
            body = req["body"]
            resp = client.request(req["method"], req["path"], headers=request_headers(state, step),
                                  content=None if body is None else json.dumps(body).encode())
            assert resp.status_code == rec["status"], f"{where}: {resp.status_code} {resp.text[:300]}"
            for name, value in rec["headers"].items():
                if name == "content-type":
                    assert resp.headers[name].startswith(value), where
            rec_x = {k: v for k, v in rec["headers"].items() if k.startswith("x-")}
            act_x = {k: v for k, v in resp.headers.items() if k.lower().startswith("x-")}
            assert act_x == rec_x, f"{where}: x-headers {act_x} != {rec_x}"
            expected, actual = trim_like_recording(rec["body"], resp.json())
            if scripted:
                assert actual == expected, where
                # byte-level: same key order too (zod schema order + server additions)
                assert json.dumps(actual) == json.dumps(expected), f"{where}: key order differs"
            else:
                masked.check(expected, actual, where)
    if scripted:
        assert all(not q for q in queues.values()), f"generated values left unused: {queues}"
    return len(steps)


# ---------------------------------------------------------------------------------------------------------
# 1. replay
# ---------------------------------------------------------------------------------------------------------


def test_replay_recorded_exchanges_exactly(mirubato):
    """Scripted ids and recorded clock: every response equals the recording, key order included."""
    assert replay(mirubato, scripted=True) == 37


def test_replay_recorded_exchanges_masked(mirubato):
    """Random ids/tokens: equal up to a consistent renaming of server-generated values."""
    replay(mirubato, scripted=False)


def test_replay_leaves_expected_database(mirubato):
    """Facts the recordings state but do not show in a body: versions (file 06), device ids, the
    stored occurrence nulls (file 11), per-user rows (file 12)."""
    replay(mirubato, scripted=True)
    state = mirubato.state
    assert state.version_of("user_rec1", "practice_plan", "plan_b3720o35o1pl3kb7dk6l") == 3
    # the batch probe conflicted, so nothing was written
    assert state.row("user_rec1", "practice_plan", "plan_b3720o35o1pl3kb7dk6l").device_id == "dev_rec0000000000001"
    batch_row = state.row("user_rec1", "practice_plan", "plan_rec_from_batch")
    assert batch_row.device_id is None and batch_row.checksum == "client-supplied-checksum-rec-0001"
    deleted = state.row("user_rec1", "logbook_entry", "entry_lm54d9irenwiqs28tdq3")
    assert deleted.deleted_at == "2026-12-04T11:00:00.000Z"
    assert state.row("user_rec1", "practice_plan", "plan_rec_companion_of_bad_push") is None
    assert state.row("user_rec2", "logbook_entry", "entry_63p2xkd1uljafy4h3b76").data["instrument"] == "viola"
    # the checksum the recorder computed client-side (file 10) is the stored one
    assert state.row("user_rec1", "practice_plan", "plan_inmdxbgk7u9cmy7pq61s").checksum == \
        "a7163f867bdb4a3714131f5ee76cce81c6457528076ac772da3591f5929f4b74"


# ---------------------------------------------------------------------------------------------------------
# 2. faults
# ---------------------------------------------------------------------------------------------------------

ENTRY = {"id": "entry_1", "timestamp": "2026-03-02T08:00:00.000Z", "duration": 20, "type": "practice",
         "instrument": "Piano", "pieces": [], "techniques": [], "goalIds": [], "tags": [],
         "createdAt": "2026-03-02T08:00:00.000Z", "updatedAt": "2026-03-02T08:00:00.000Z"}


def push_body(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"changes": {"entries": list(entries or [ENTRY])}}


@pytest.fixture
def client(mirubato):
    with httpx.Client(base_url=mirubato.url, headers=mirubato.auth(), timeout=5) as c:
        yield c


def test_fault_500_before_writes_nothing(mirubato, client):
    mirubato.state.inject("500-before", path=PUSH)
    r = client.post(PUSH, json=push_body(), headers={"X-Idempotency-Key": "k1"})
    assert r.status_code == 500
    assert r.json() == {"success": False, "error": "Internal server error", "code": 500}
    assert mirubato.state.live_rows("user_a") == []
    assert client.post(PUSH, json=push_body(), headers={"X-Idempotency-Key": "k1"}).status_code == 200
    assert mirubato.state.requests == [("POST", PUSH, "k1"), ("POST", PUSH, "k1")]


def test_fault_500_after_commits_and_retry_reprocesses(mirubato, client):
    mirubato.state.inject("500-after", path=PUSH)
    r = client.post(PUSH, json=push_body(), headers={"X-Idempotency-Key": "k1"})
    assert r.status_code == 500 and r.json()["code"] == 500
    assert mirubato.state.version_of("user_a", "logbook_entry", "entry_1") == 1
    token_after_failure = mirubato.state.sync_token_of("user_a")
    assert token_after_failure is not None
    retry = client.post(PUSH, json=push_body(), headers={"X-Idempotency-Key": "k1"})
    assert retry.status_code == 200 and "x-idempotent-replay" not in retry.headers  # nothing cached
    assert mirubato.state.version_of("user_a", "logbook_entry", "entry_1") == 2
    assert retry.json()["syncToken"] != token_after_failure


def test_fault_drop_after_commits_then_closes_without_response(mirubato, client):
    mirubato.state.inject("drop-after", path=PUSH)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(PUSH, json=push_body(), headers={"X-Idempotency-Key": "k-drop"})
    assert mirubato.state.version_of("user_a", "logbook_entry", "entry_1") == 1
    retry = client.post(PUSH, json=push_body(), headers={"X-Idempotency-Key": "k-drop"})
    assert retry.status_code == 200 and retry.headers["x-idempotent-replay"] == "true"
    assert retry.json()["syncToken"] == mirubato.state.sync_token_of("user_a")
    assert mirubato.state.version_of("user_a", "logbook_entry", "entry_1") == 1
    assert mirubato.state.count_requests(PUSH) == 2


def test_fault_delay_after_times_out_the_client_but_commits(mirubato, client):
    mirubato.state.inject("delay-after", seconds=5, path=PUSH)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post(PUSH, json=push_body(), timeout=0.3)
    assert time.monotonic() - started < 2
    assert mirubato.state.version_of("user_a", "logbook_entry", "entry_1") == 1
    # the server stops waiting once the client has gone; the next request is served at once
    assert client.get(STATUS).json()["entityCount"] == 1


def test_fault_delay_after_short_delay_still_answers(mirubato, client):
    mirubato.state.inject("delay-after", seconds=0.2)
    started = time.monotonic()
    r = client.get(STATUS)
    assert r.status_code == 200 and time.monotonic() - started >= 0.2


def test_fault_truncate_gives_a_complete_message_with_half_a_json_body(mirubato, client):
    mirubato.state.inject("truncate", path=PUSH)
    r = client.post(PUSH, json=push_body())
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    assert r.text.startswith('{"success":true') and int(r.headers["content-length"]) == len(r.content)
    assert mirubato.state.version_of("user_a", "logbook_entry", "entry_1") == 1


def test_fault_429_with_retry_after_and_nothing_processed(mirubato, client):
    mirubato.state.inject("429", count=2, seconds=7, path=PUSH)
    for _ in range(2):
        r = client.post(PUSH, json=push_body())
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert r.json() == {"success": False, "error": "Too many requests", "code": 429}
    assert mirubato.state.live_rows("user_a") == []
    assert client.post(PUSH, json=push_body()).status_code == 200


def test_fault_empty_pull(mirubato, client):
    client.post(PUSH, json=push_body())
    mirubato.state.inject("empty-pull")
    r = client.post(PULL, json={})
    assert r.status_code == 200
    body = r.json()
    assert [body[k] for k in ("entries", "goals", "practicePlans", "planOccurrences", "planTemplates")] == [[]] * 5
    assert body["syncToken"] == mirubato.state.sync_token_of("user_a")
    assert len(client.post(PULL, json={}).json()["entries"]) == 1


def test_faults_are_filtered_by_path_and_consumed_in_order(mirubato, client):
    state = mirubato.state
    state.inject("500-before", path=PUSH)
    state.inject("429", method="GET")
    assert client.post(PULL, json={}).status_code == 200
    assert client.get(STATUS).status_code == 429
    assert client.post(PUSH, json=push_body()).status_code == 500
    assert client.post(PUSH, json=push_body()).status_code == 200
    assert list(state.faults) == []
    assert [p for _, p, _ in state.requests] == [PULL, STATUS, PUSH, PUSH]
    with pytest.raises(ValueError):
        state.inject("teapot")


# ---------------------------------------------------------------------------------------------------------
# 3. extended mode
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def ext(mirubato_ext):
    with httpx.Client(base_url=mirubato_ext.url, headers=mirubato_ext.auth(), timeout=5) as c:
        yield mirubato_ext, c


def entry(n: int, **extra: Any) -> dict[str, Any]:
    return {**ENTRY, "id": f"entry_{n}", **extra}


def test_ext_status_advertises_capabilities(ext):
    _, c = ext
    body = c.get(STATUS).json()
    assert body["server"] == "practiceplan"
    assert body["capabilities"] == ["incremental-pull", "tombstones", "conditional-push"]


def test_ext_incremental_pull_pages_and_tombstones(ext):
    _, c = ext
    first = c.post(PUSH, json=push_body(entry(1), entry(2), entry(3))).json()
    assert first["versions"] == {"logbook_entry:entry_1": 1, "logbook_entry:entry_2": 1,
                                 "logbook_entry:entry_3": 1}
    page1 = c.post(PULL, json={"since": None, "limit": 2}).json()
    assert [e["id"] for e in page1["entries"]] == ["entry_1", "entry_2"]
    assert page1["hasMore"] is True and page1["cursor"] == "2"
    assert page1["versions"] == {"logbook_entry:entry_1": 1, "logbook_entry:entry_2": 1}
    page2 = c.post(PULL, json={"since": page1["cursor"], "limit": 2}).json()
    assert [e["id"] for e in page2["entries"]] == ["entry_3"] and page2["hasMore"] is False
    assert page2["cursor"] == "3"
    # delete entry_2 and edit entry_1: both come after the cursor, ascending by seq, the delete as a tombstone
    deleted = c.post(PUSH, json=push_body(entry(2, deletedAt="2026-03-02T10:00:00.000Z"))).json()
    assert deleted["versions"] == {"logbook_entry:entry_2": 2}
    c.post(PUSH, json=push_body(entry(1, notes="edited")))
    delta = c.post(PULL, json={"since": page2["cursor"]}).json()
    assert [(e["id"], e.get("deletedAt")) for e in delta["entries"]] == [
        ("entry_2", "2026-03-02T10:00:00.000Z"), ("entry_1", None)]
    assert delta["versions"] == {"logbook_entry:entry_2": 2, "logbook_entry:entry_1": 2}
    assert delta["cursor"] == "5" and delta["hasMore"] is False
    empty = c.post(PULL, json={"since": "5"}).json()
    assert empty["entries"] == [] and empty["cursor"] == "5" and empty["versions"] == {}
    # without "since" it is the plain Mirubato pull: live rows only, newest write first, no extras
    plain = c.post(PULL, json={}).json()
    assert [e["id"] for e in plain["entries"]] == ["entry_1", "entry_3"]
    assert not {"cursor", "hasMore", "versions"} & set(plain)
    assert c.post(PULL, json={"since": "abc"}).status_code == 400
    assert c.post(PULL, json={"since": None, "limit": 0}).status_code == 400


def test_ext_per_user_sequences(ext):
    server, c = ext
    c.post(PUSH, json=push_body(entry(1)))
    other = {"Authorization": f"Bearer {server.token('user_b')}"}
    c.post(PUSH, json=push_body(entry(7)), headers=other)
    pulled = c.post(PULL, json={"since": None}, headers=other).json()
    assert [e["id"] for e in pulled["entries"]] == ["entry_7"] and pulled["cursor"] == "1"


def test_ext_conditional_push_stale_conflict(ext):
    server, c = ext
    c.post(PUSH, json=push_body(entry(1), entry(2)))
    r = c.post(PUSH, json={**push_body(entry(1, notes="mine"), entry(2, notes="also"), entry(3)),
                           "baseVersions": {"logbook_entry:entry_1": 1, "logbook_entry:entry_2": 7,
                                            "logbook_entry:entry_3": 0}}).json()
    assert r["success"] is True
    assert r["conflicts"] == [{"entityId": "entry_2", "entityType": "logbook_entry", "reason": "stale",
                               "remoteVersion": 1}]
    assert r["versions"] == {"logbook_entry:entry_1": 2, "logbook_entry:entry_3": 1}
    assert r["stats"]["entriesProcessed"] == 2
    state = server.state
    assert state.row("user_a", "logbook_entry", "entry_2").data.get("notes") is None
    # "0 = I believe it does not exist": stale once it does
    again = c.post(PUSH, json={**push_body(entry(3)), "baseVersions": {"logbook_entry:entry_3": 0}}).json()
    assert again["conflicts"][0]["remoteVersion"] == 1 and again["versions"] == {}
    # a delete based on an old version is refused too; a tombstone has a version
    c.post(PUSH, json=push_body(entry(1, deletedAt="2026-03-02T11:00:00.000Z")))
    assert state.version_of("user_a", "logbook_entry", "entry_1") == 3
    revive = c.post(PUSH, json={**push_body(entry(1)), "baseVersions": {"logbook_entry:entry_1": 2}}).json()
    assert revive["conflicts"][0]["remoteVersion"] == 3
    assert state.row("user_a", "logbook_entry", "entry_1").deleted_at is not None


def test_ext_idempotency_reuse_is_422_and_writes_nothing(ext):
    server, c = ext
    key = {"X-Idempotency-Key": "ext-key"}
    first = c.post(PUSH, json=push_body(entry(1)), headers=key)
    replay_ = c.post(PUSH, json=push_body(entry(1)), headers=key)
    assert replay_.headers["x-idempotent-replay"] == "true" and replay_.json() == first.json()
    other = c.post(PUSH, json=push_body(entry(2)), headers=key)
    assert other.status_code == 422
    assert other.json() == {"success": False, "error": "Idempotency key reused with a different body",
                            "code": 422}
    assert server.state.row("user_a", "logbook_entry", "entry_2") is None
    # baseVersions are part of the request: same changes, other preconditions = other body
    assert c.post(PUSH, json={**push_body(entry(1)), "baseVersions": {"logbook_entry:entry_1": 1}},
                  headers=key).status_code == 422


def test_mirubato_mode_ignores_extension_fields(mirubato, client):
    r = client.post(PUSH, json={**push_body(), "baseVersions": {"logbook_entry:entry_1": 9}}).json()
    assert r["conflicts"] == [] and "versions" not in r
    pulled = client.post(PULL, json={"since": "0", "limit": 1}).json()
    assert set(pulled) == {"entries", "goals", "practicePlans", "planOccurrences", "planTemplates",
                           "syncToken", "timestamp"}
    assert not {"server", "capabilities"} & set(client.get(STATUS).json())


# ---------------------------------------------------------------------------------------------------------
# 4. quirks not covered by the recordings
# ---------------------------------------------------------------------------------------------------------


def test_example_f_whole_request_400(mirubato, client):
    """§11.6: an occurrence deletion without planId plus a piece with composer null: bare 400."""
    body = {"changes": {"planOccurrences": [{"id": "plan_occ_x", "deletedAt": "2026-05-06T10:00:00.000Z"}],
                        "entries": [{"id": "entry_y", "pieces": [{"title": "Air", "composer": None}]}]}}
    r = client.post(PUSH, json=body)
    assert r.status_code == 400 and r.json() == {"success": False, "error": "Invalid request body", "code": 400}
    for bad in ({}, {"changes": None}, {"changes": {"entries": None}}, {"changes": {"entries": [{"id": 5}]}},
                {"changes": {"entries": [{"id": "e", "type": "PRACTICE"}]}},
                {"changes": {"entries": [{"id": "e", "timestamp": "2026-03-02T08:00:00+01:00"}]}},
                {"changes": {"entries": [{"id": "e", "duration": 1.5}]}},
                {"changes": {"entries": [{"id": "e", "metadata": []}]}},
                {"changes": {"practicePlans": [{"id": "p", "schedule": {"rule": "FREQ=DAILY"}}]}},
                {"changes": {"planTemplates": [{"id": "t", "sourcePlanId": None}]}},
                {"changes": {"planOccurrences": [{"id": "o", "planId": "p", "metrics": {"done": True}}]}}):
        assert client.post(PUSH, json=bad).status_code == 400, bad
    assert client.post(PUSH, content=b"{not json").status_code == 400
    assert mirubato.state.sync_token_of("user_a") is None  # nothing processed at all


def test_push_transforms_and_unknown_keys(mirubato, client):
    body = {"changes": {
        "entries": [{**ENTRY, "scoreId": "dropped", "mood": "excited", "timestamp": 1772438400123,
                     "pieces": [{"title": "Etude in C", "tempo": 80}, {"id": " Score_Abc-12 ", "title": "x"}],
                     "metadata": {"kept": {"deep": True}}}],
        "planOccurrences": [{"id": "o1", "planId": "p1", "plan_id": "ignored", "extra": 1,
                             "checkIn": {"recordedAt": "x", "responses": {"q": "a"}, "junk": 1}}],
        "planTemplates": [{"id": "t1", "authorId": "", "user_id": "dropped", "title": "T"}],
        "goals": [{"id": "g1", "title": "G", "progress": 50, "targetValue": 3}],
        "repertoire": [{"id": "r1"}]}, "extra": True}
    r = client.post(PUSH, json=body).json()
    assert r["stats"] == {"entriesProcessed": 1, "duplicatesPrevented": 0, "goalsProcessed": 1,
                          "practicePlansProcessed": 0, "planOccurrencesProcessed": 1}
    pulled = client.post(PULL).json()
    e = pulled["entries"][0]
    assert e["instrument"] == "piano" and e["timestamp"] == 1772438400123 and "scoreId" not in e
    assert e["goal_ids"] == [] and "goalIds" not in e and e["metadata"] == {"kept": {"deep": True}}
    assert e["pieces"] == [{"title": "Etude in C", "id": "etude in c-unknown"},
                           {"id": "Score_Abc-12", "title": "x"}]
    o = pulled["planOccurrences"][0]
    assert o["plan_id"] == "p1" and "extra" not in o and o["checkIn"] == {"recordedAt": "x", "responses": {"q": "a"}}
    assert pulled["planTemplates"][0] == {"id": "t1", "authorId": "user_a", "title": "T"}
    assert pulled["goals"] == [{"id": "g1", "title": "G"}]


def test_recurrence_metadata_conflict_and_template_conflict(mirubato, client):
    schedule = {"kind": "recurring", "rule": "FREQ=DAILY", "metadata": {"recurrence": {"frequency": "YEARLY"}}}
    r = client.post(PUSH, json={"changes": {
        "practicePlans": [{"id": "p", "schedule": schedule}],
        "planTemplates": [{"id": "t", "schedule": {"kind": "recurring"}}]}}).json()
    assert r["success"] is True and r["conflicts"] == [
        {"entityId": "p", "entityType": "practice_plan", "reason": "Invalid recurrence metadata"},
        {"entityId": "t", "entityType": "plan_template", "reason": "Invalid recurrence rule"}]
    # cached with its conflicts (G18)
    assert mirubato.state.live_rows("user_a") == []


def test_idempotency_hash_ignores_timestamps_and_null_vs_empty(mirubato, client):
    """§5.8 / G21: bodies differing only in entry timestamps, or null versus "", collide."""
    key = {"X-Idempotency-Key": "loose"}
    first = client.post(PUSH, json=push_body({**ENTRY, "notes": None}), headers=key).json()
    second = client.post(PUSH, json=push_body({**ENTRY, "notes": "", "timestamp": 1}), headers=key)
    assert second.headers["x-idempotent-replay"] == "true" and second.json() == first
    assert mirubato.state.row("user_a", "logbook_entry", "entry_1").data["notes"] is None
    # keys are per user
    other = client.post(PUSH, json=push_body(), headers={**key, **mirubato.auth("user_b")})
    assert "x-idempotent-replay" not in other.headers


def test_idempotency_ttl_runs_to_the_end_of_the_expiry_day(mirubato, client):
    """§5.8: ``expires_at`` (ISO-Z) is compared with ``datetime('now')`` as text."""
    clock = FixedClock("2026-03-02T09:00:00.000Z")
    mirubato.state.clock = clock
    key = {"X-Idempotency-Key": "ttl"}
    client.post(PUSH, json=push_body(), headers={**key, **mirubato.auth()})
    clock.set("2026-03-03T23:59:59.000Z")  # 39 h later, same calendar day as the nominal expiry
    r = client.post(PUSH, json=push_body(), headers={**key, **mirubato.auth()})
    assert r.headers.get("x-idempotent-replay") == "true"
    clock.set("2026-03-04T00:00:00.000Z")
    r = client.post(PUSH, json=push_body(), headers={**key, **mirubato.auth()})
    assert "x-idempotent-replay" not in r.headers


def test_auth_details(mirubato):
    state = mirubato.state
    with httpx.Client(base_url=mirubato.url, timeout=5) as c:
        c.cookies.set("auth-token", state.token_for("user_c"))
        assert c.get(STATUS).status_code == 200  # cookie fallback when there is no header
        assert c.get(STATUS, headers={"Authorization": ""}).status_code == 200  # ... or an empty one
        c.cookies.clear()
        future = int(state.now().timestamp()) + 600
        r = c.get(STATUS, headers={"Authorization": f"Bearer {state.token_for('u', nbf=future)}"})
        assert r.status_code == 401 and r.json()["error"] == "Invalid or expired token"
        # only the first "Bearer " is removed (JS String.replace), so a doubled prefix is a bad token
        r = c.get(STATUS, headers={"Authorization": f"Bearer Bearer {state.token_for('u')}"})
        assert r.status_code == 401
        r = c.get(STATUS, headers={"Authorization": f"Bearer {state.token_for('u', secret=state.secret)}"})
        assert r.status_code == 200
        r = c.get(STATUS, headers={"Authorization": "Bearer"})  # no space: not stripped, a bad token
        assert r.json()["error"] == "Invalid or expired token"


def test_404_envelope(mirubato, client):
    for method, path in (("GET", PULL), ("GET", "/api/nope"), ("POST", STATUS), ("POST", "/api/sync/pull/")):
        r = client.request(method, path)
        assert r.status_code == 404 and r.json() == {"success": False, "error": "Not found", "code": 404}


def test_batch_example_h_semantics(mirubato, client):
    """§2.3 / §11.8: insert, version-gated update, conflict shape, downloaded count, duplicate checksums."""
    state = mirubato.state
    ents = [{"id": "a", "type": "practice_plan", "data": {"id": "a"}, "checksum": "c-a", "version": 1},
            {"id": "u", "type": "user_preferences", "data": {"theme": "dark"}, "checksum": "c-u", "version": 1}]
    assert client.post(BATCH, json={"entities": ents}).json()["uploaded"] == 2
    for _ in range(2):
        client.post(BATCH, json={"entities": [{**ents[0], "checksum": f"c-{time.monotonic()}", "version": 9}]})
    assert state.version_of("user_a", "practice_plan", "a") == 3
    r = client.post(BATCH, json={"entities": [
        {**ents[0], "checksum": "new", "version": 2},
        {"id": "b", "type": "practice_plan", "data": {"id": "b"}, "checksum": "c-u-dup", "version": 1},
        {"id": "c", "type": "practice_plan", "data": {"id": "c"}, "checksum": "c-u-dup", "version": 1}]}).json()
    assert r["conflicts"] == [{"entityId": "a", "localVersion": 2, "remoteVersion": 3}]
    assert r["uploaded"] == 2 and r["downloaded"] == 1  # c counted, but dropped by the checksum check
    assert state.row("user_a", "practice_plan", "c") is None
    assert client.get(STATUS).json()["entityCount"] == 3  # user_preferences counted
    assert [p["id"] for p in client.post(PULL).json()["practicePlans"]] == ["a", "b"]
    assert client.post(BATCH, json={"entities": [{**ents[0], "version": 0}]}).status_code == 400
    assert client.post(BATCH, json={"entities": [{**ents[0], "type": "repertoire_item"}]}).status_code == 400


def test_adopt_errors_and_segments(mirubato, client):
    assert client.post(ADOPT, json={"templateId": "nope"}).json() == {"error": "Template not found"}
    assert client.post(ADOPT, json={}).status_code == 400
    client.post(PUSH, json={"changes": {"planTemplates": [{"id": "t-bad", "title": "no dates",
                                                           "schedule": {"kind": "single"}}]}})
    bad = client.post(ADOPT, json={"templateId": "t-bad"})
    assert bad.status_code == 500 and bad.json()["error"] == "Failed to adopt template"
    template = {"id": "t", "title": "T", "publishedAt": "x", "createdAt": "x", "updatedAt": "x",
                "sourcePlanId": "src", "schedule": {"kind": "single", "flexibility": "anytime"},
                "metadata": {"preview": {"segments": [{"label": "from preview"}]}}}
    client.post(PUSH, json={"changes": {"planTemplates": [template]}})
    mirubato.state.clock = FixedClock("2026-03-02T09:00:00.000Z")
    r = client.post(ADOPT, json={"templateId": "t", "customization": {"schedule": {"timeOfDay": "18:15"}}}).json()
    occ = r["occurrences"][0]
    assert occ["segments"] == [{"label": "from preview"}] and occ["flexWindow"] == "same-day"
    assert occ["scheduledStart"] == "2026-03-02T18:15:00.000Z" and occ["scheduledEnd"] == "2026-03-02T19:15:00.000Z"
    assert "description" not in r["plan"] and r["plan"]["type"] == "custom"
    stored = next(p for p in client.post(PULL).json()["practicePlans"] if p["id"] == r["plan"]["id"])
    assert stored["description"] is None  # undefined in the response, null once stored
    # another user's occurrence of the source plan wins over the preview (cross-tenant read, G27)
    other = mirubato.auth("user_z")
    client.post(PUSH, headers=other, json={"changes": {"planOccurrences": [
        {"id": "o", "planId": "src", "segments": [{"id": "s1", "label": "  Scales ", "durationMinutes": 5,
                                                  "techniques": [" a ", ""]}]}]}})
    r2 = client.post(ADOPT, json={"templateId": "t"}).json()
    assert r2["occurrences"][0]["segments"] == [{"label": "Scales", "durationMinutes": 5, "techniques": ["a"]}]


def test_checksum_vectors():
    """§5.4 test vectors."""
    assert mirubato_checksum({"id": "test", "value": 42, "nested": {"array": [1, 2, 3]}}) == \
        "91c73e561b591c7f794d02e4fdc59f6b77db20abd419be2b2024ae8ffa9ccc35"
    assert mirubato_checksum({"b": 1, "a": [1.5, 0.1, 1e21, 1e-7, -0.0000012, 100, 2.5e-5]}) == \
        "24a0db2318b36f49e186e56f2248e834c23b28e623b08dce35e9f82ce6e193bb"
    assert mirubato_checksum({"é": "ü\n\t\u0001", "Z": "😀", "a": None, "\ue000": 1, "😀": 2}) == \
        "f9ac1b21529317ee8d93a04996fe43dafb2f2b5d571a7ce46a25241c3c566e24"


@pytest.mark.parametrize(("piece", "expected"), [
    ({"title": "Clair de lune", "composer": "Claude Debussy"}, "clair de lune-claude debussy"),
    ({"title": "Etude in C"}, "etude in c-unknown"),
    ({"title": "Prelude \u2013 Op. 28", "composer": "F. Chopin"}, "prelude - op. 28||f chopin"),
    ({"id": "Moonlight||Beethoven", "title": "x"}, "moonlight-beethoven"),
    ({"id": "a-b-c", "title": "x"}, "a||b-c"),
    ({"id": "score_bach-bwv_846", "title": "x"}, "score_bach-bwv_846"),
])
def test_score_id_normalisation(piece, expected):
    assert normalize_score_id(piece) == expected


@pytest.mark.parametrize(("rule", "valid"), [
    ("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO", True), ("freq=daily", True), (" ; FREQ = MONTHLY", False),
    ("RRULE:FREQ=WEEKLY;BYDAY=MO", False), ("FREQ=YEARLY;INTERVAL=1", False), ("", False),
    ("FREQ=WEEKLY;FREQ=HOURLY", True),
])
def test_recurrence_rule_verdicts(rule, valid):
    assert recurrence_rule_is_valid(rule) is valid


def test_serve_starts_fast_and_stops_cleanly():
    import threading

    before = {t.name for t in threading.enumerate()}
    started = time.monotonic()
    with serve(make_app(ServerState())) as url:
        assert time.monotonic() - started < 1
        assert httpx.get(url + STATUS).status_code == 401
    assert {t.name for t in threading.enumerate()} <= before
