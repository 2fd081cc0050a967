"""The client against the recorded Mirubato exchanges (tests/sync/recorded): what it sends for the recorded
data is what practiceplan sent in 01, what it stores from the recorded pull 02 is that data again, and the
recorded answers to replays, 400s and per-item conflicts are handled as the protocol says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from practiceplan.domain.models import iso_z
from practiceplan.services.session import Session
from practiceplan.settings import Settings
from practiceplan.store import sync as st
from practiceplan.sync import wire
from practiceplan.sync.client import Client
from practiceplan.sync.engine import Engine

RECORDED = Path(__file__).resolve().parent / "recorded"


def step(name: str, title: str | None = None) -> dict[str, Any]:
    data = json.loads((RECORDED / name).read_text())
    steps = data if isinstance(data, list) else [data]
    return next(s for s in steps if title is None or s["name"] == title)


PUSH = step("01-push-first.json")
PULL = step("02-pull-after-push.json")
STATUS = step("08-bad-item-400.json", "status-before")["response"]["body"]


class Replay:
    """An httpx transport answering each path with recorded responses, in order; records every request."""

    def __init__(self, answers: dict[str, list[dict[str, Any]]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict[str, str], Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.url.path, dict(request.headers), body))
        queue = self.answers[request.url.path]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(answer["status"], json=answer["body"], headers=answer.get("headers") or {})


def session(tmp_path: Path, name: str) -> Session:
    env = {"PRACTICEPLAN_HOME": str(tmp_path / name), "PRACTICEPLAN_NOW": "2026-12-04T12:00:00Z",
           "PRACTICEPLAN_TZ": "Europe/London"}
    return Session(Settings(env=env))


def engine(s: Session, replay: Replay) -> Engine:
    client = Client("http://127.0.0.1:9", "tok", "dev_test", transport=httpx.MockTransport(replay))
    return Engine(s.store, client, now=lambda: iso_z(s.now), remote="http://127.0.0.1:9", retry_delays=())


def recorded_docs() -> dict[str, list[dict[str, Any]]]:
    return {wire.KIND_OF_ARRAY[a]: items for a, items in PUSH["request"]["body"]["changes"].items()}


def test_the_client_sends_what_practiceplan_sent_in_recording_01(tmp_path):
    s = session(tmp_path, "a")
    with s.store.write():
        for kind, docs in recorded_docs().items():
            s.store.save_many(kind, docs, iso_z(s.now))
    empty = {"status": 200, "body": {"entries": [], "goals": [], "practicePlans": [], "planOccurrences": [],
                                     "planTemplates": [], "syncToken": "sync_x", "timestamp": "2026-12-04T12:00:00Z"}}
    replay = Replay({"/api/sync/status": [{"status": 200, "body": STATUS}], "/api/sync/pull": [empty],
                     "/api/sync/push": [PUSH["response"]]})
    summary = engine(s, replay).run()
    assert summary.sent == 12 and summary.conflicts == []
    pushes = [r for r in replay.requests if r[0] == "/api/sync/push"]
    assert len(pushes) == 1
    _path, headers, body = pushes[0]
    assert headers["x-device-id"] == "dev_test" and headers["x-idempotency-key"].startswith("pp-")
    assert headers["authorization"] == "Bearer tok" and headers["content-type"] == "application/json"
    sent = {a: {i["id"]: i for i in items} for a, items in body["changes"].items()}
    recorded = {a: {i["id"]: i for i in items} for a, items in PUSH["request"]["body"]["changes"].items()}
    assert sent == recorded  # item for item, field for field
    assert st.outbox_count(s.store.conn) == {}
    s.close()


def test_the_client_stores_the_recorded_pull_as_the_data_that_was_pushed(tmp_path):
    s = session(tmp_path, "b")
    replay = Replay({"/api/sync/status": [{"status": 200, "body": STATUS}], "/api/sync/pull": [PULL["response"]],
                     "/api/sync/push": [PUSH["response"]]})
    summary = engine(s, replay).run()
    assert summary.received == 12 and summary.merged == 12 and summary.sent == 0
    assert [r[0] for r in replay.requests] == ["/api/sync/status", "/api/sync/pull"]
    for kind, docs in recorded_docs().items():
        for doc in docs:
            stored = s.store.get(kind, doc["id"])
            owned = set(wire.SERVER_OWNED.get(kind, ()))
            assert {k: v for k, v in stored.items() if k not in owned} == \
                {k: v for k, v in doc.items() if k not in owned}
    assert s.store.get("plan_template", recorded_docs()["plan_template"][0]["id"])["authorId"] == "user_rec1"
    assert st.outbox_count(s.store.conn) == {}
    s.close()


def test_a_recorded_replay_answer_acknowledges_the_batch(tmp_path):
    s = session(tmp_path, "c")
    with s.store.write():
        for kind, docs in recorded_docs().items():
            s.store.save_many(kind, docs, iso_z(s.now))
    replayed = step("03-replay-same-key.json")["response"]
    assert replayed["headers"]["x-idempotent-replay"] == "true"
    empty = {"status": 200, "body": {"entries": [], "practicePlans": [], "planOccurrences": [], "planTemplates": []}}
    replay = Replay({"/api/sync/status": [{"status": 200, "body": STATUS}], "/api/sync/pull": [empty],
                     "/api/sync/push": [replayed]})
    assert engine(s, replay).run().sent == 12
    assert st.pending_batch(s.store.conn) is None
    s.close()


def test_recorded_per_item_conflicts_become_conflict_records(tmp_path, monkeypatch):
    s = session(tmp_path, "d")
    recorded = step("09-per-item-conflict.json")
    plans = recorded["request"]["body"]["changes"]["practicePlans"]
    with s.store.write():
        s.store.save_many("practice_plan", plans, iso_z(s.now))
    monkeypatch.setattr(wire, "problems", lambda kind, item: [])  # let the refused rules reach the server
    empty = {"status": 200, "body": {"entries": [], "practicePlans": [], "planOccurrences": [], "planTemplates": []}}
    replay = Replay({"/api/sync/status": [{"status": 200, "body": STATUS}], "/api/sync/pull": [empty],
                     "/api/sync/push": [recorded["response"]]})
    summary = engine(s, replay).run()
    refused = {c["entityId"] for c in recorded["response"]["body"]["conflicts"]}
    assert {r["id"] for r in summary.rejected} == refused and summary.sent == len(plans) - len(refused)
    records = st.conflicts(s.store.conn)
    assert {c["entity_id"] for c in records} == refused
    assert all(c["reason"] == "refused by the server: Invalid recurrence rule" and c["kept"] == "local"
               for c in records)
    assert st.outbox_count(s.store.conn) == {}  # not pushed again and again; the conflict holds it
    s.close()


@pytest.mark.parametrize("title", ["nested-object-in-metrics", "status-rescheduled"])
def test_a_recorded_bare_400_is_narrowed_to_the_bad_item(tmp_path, title):
    s = session(tmp_path, "e")
    recorded = step("08-bad-item-400.json", title)
    changes = recorded["request"]["body"]["changes"]
    good = [{**PUSH["request"]["body"]["changes"]["entries"][1]}]
    with s.store.write():
        for array, items in changes.items():
            s.store.save_many(wire.KIND_OF_ARRAY[array], items, iso_z(s.now))
        s.store.save_many("logbook_entry", good, iso_z(s.now))

    def push(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        items = [(wire.KIND_OF_ARRAY[a], i) for a, lst in body["changes"].items() for i in lst]
        if any(wire.problems(kind, item) for kind, item in items):
            return httpx.Response(400, json=recorded["response"]["body"])
        return httpx.Response(200, json={"success": True, "conflicts": []})

    replay = Replay({"/api/sync/status": [{"status": 200, "body": STATUS}],
                     "/api/sync/pull": [{"status": 200, "body": {}}]})
    transport = httpx.MockTransport(lambda r: push(r) if r.url.path.endswith("/push") else replay(r))
    client = Client("http://127.0.0.1:9", "tok", "dev_test", transport=transport)
    eng = Engine(s.store, client, now=lambda: iso_z(s.now), remote="http://127.0.0.1:9", retry_delays=())
    eng.precheck = lambda kind, item: []  # as if the client did not know the server's rule: it is sent
    summary = eng.run()
    bad = {i["id"]: wire.problems(wire.KIND_OF_ARRAY[a], i) for a, lst in changes.items() for i in lst
           if wire.problems(wire.KIND_OF_ARRAY[a], i)}
    assert len(bad) == 1 and {r["id"]: r["problems"] for r in summary.rejected} == bad  # by id and field
    assert summary.sent == 1 + sum(len(v) for v in changes.values()) - 1
    record = st.conflicts(s.store.conn)[0]
    assert record["entity_id"] in bad and record["reason"].startswith("refused by the server (a bad request): ")
    assert list(bad.values())[0][0].split(":")[0] in record["reason"]
    s.close()
