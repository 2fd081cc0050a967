"""Live updates (docs/collaboration.md "Live updates"), on both backends: the ``/api/live`` WebSocket (HELLO,
events of a push within a second, refusals, the per-user limit, revocation), two `practiceplan serve` processes on
one database delivering each other's events, catching up after a dropped connection, and the hub's parts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from practiceplan.server import db, live, users
from practiceplan.server.app import make_app
from tests.server.serve_process import ServeProcess
from tests.sync.server import serve

T0 = "2026-06-01T10:00:00.000Z"


def plan(pid: str, title: str = "Scales") -> dict[str, Any]:
    return {"id": pid, "title": title, "type": "custom", "schedule": {"kind": "single", "durationMinutes": 30},
            "visibility": "private", "status": "active", "createdAt": T0, "updatedAt": T0}


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://", 1) + "/api/live"


def open_ws(base: str, token: str | None, *, query: str = "") -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return connect(ws_url(base) + query, additional_headers=headers, proxy=None, open_timeout=5).__enter__()


def frame(ws: ClientConnection, timeout: float = 1.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def nothing(ws: ClientConnection, within: float = 0.5) -> bool:
    try:
        ws.recv(timeout=within)
    except TimeoutError:
        return True
    return False


@pytest.fixture
def live_app(srv: Any) -> Iterator[tuple[str, Any]]:
    """``srv``'s service in an app served with WebSockets and its lifespan (the hub runs): (base URL, app)."""
    app = make_app(srv.service)
    with serve(app, websockets=True) as url:
        yield url, app


def test_hello_then_a_push_reaches_the_users_other_connection_within_a_second(srv, live_app):
    base, app = live_app
    ana, bob = srv.user("ana"), srv.user("bob")
    if srv.backend == "postgresql":  # the lifespan started the hub, which LISTENs
        deadline = time.monotonic() + 5
        while not app.state.live.listening:
            assert time.monotonic() < deadline, "the hub never LISTENed"
            time.sleep(0.02)
    with open_ws(base, ana) as first, open_ws(base, ana) as second, open_ws(base, bob) as other:
        hello = frame(first)
        assert hello["type"] == "HELLO" and hello["user"] == "ana" and hello["server"] == "practiceplan"
        assert hello["timestamp"].endswith("Z")
        assert frame(second)["type"] == "HELLO" and frame(other)["user"] == "bob"
        began = time.monotonic()
        assert srv.push("ana", {"practicePlans": [plan("p-live")]}).status_code == 200
        got = [frame(second, 1.0), frame(first, 1.0)]
        assert time.monotonic() - began < 1.0
        for event in got:
            assert event["type"] == "PLAN_CREATED" and event["plan"]["id"] == "p-live"
            assert event["plan"]["title"] == "Scales" and isinstance(event["seq"], int)
        srv.push("ana", {"practicePlans": [{**plan("p-live", "Arpeggios"), "updatedAt": "2026-06-01T11:00:00.000Z"}]})
        changed = frame(second)
        assert changed["type"] == "PLAN_UPDATED" and changed["plan"]["title"] == "Arpeggios"
        assert nothing(other), "bob does not take part in ana's plan: no event"


@pytest.mark.parametrize("how", ["no token", "bad token", "token in the query", "query and header"])
def test_a_connection_without_a_valid_bearer_header_is_refused(srv, live_app, how):
    base, _app = live_app
    ana = srv.user("ana")
    token, query = {"no token": (None, ""), "bad token": ("pps_not-a-real-token", ""),
                    "token in the query": (None, f"?token={ana}"),
                    "query and header": (ana, f"?token={ana}")}[how]
    with pytest.raises(InvalidStatus) as refused:
        open_ws(base, token, query=query)
    assert refused.value.response.status_code == 403


def test_the_21st_connection_of_a_user_is_refused_with_4429(srv, live_app):
    base, _app = live_app
    ana = srv.user("ana")
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(open_ws(base, ana)) for _ in range(live.PER_USER)]
        assert all(frame(ws)["type"] == "HELLO" for ws in opened)
        extra = open_ws(base, ana)
        with pytest.raises(ConnectionClosed) as closed:
            extra.recv(timeout=2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == live.CLOSE_TOO_MANY
        extra.close()
        opened[0].close()
        deadline = time.monotonic() + 2
        while _app_hub(live_app).count(_id(srv, "ana")) >= live.PER_USER and time.monotonic() < deadline:
            time.sleep(0.02)
        with open_ws(base, ana) as again:  # a slot was freed
            assert frame(again)["type"] == "HELLO"


def _app_hub(live_app: tuple[str, Any]) -> live.Hub:
    return live_app[1].state.live


def _id(srv: Any, name: str) -> int:
    found = users.authenticate(srv.engine, srv.tokens[name])
    assert found is not None
    return found.id


def test_a_revoked_user_is_closed_with_4401(srv, live_app):
    base, app = live_app
    app.state.live.recheck = 0.2
    ana, srv_bob = srv.user("ana"), srv.user("bob")
    with open_ws(base, ana) as ws, open_ws(base, srv_bob) as kept:
        assert frame(ws)["type"] == "HELLO" and frame(kept)["type"] == "HELLO"
        users.revoke(srv.engine, "ana")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=3)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == live.CLOSE_UNAUTHORISED
        assert nothing(kept, 0.5), "bob's connection stays open"
    with pytest.raises(InvalidStatus):
        open_ws(base, ana)


def test_a_dropped_connection_catches_up_with_a_pull_and_old_events_are_not_replayed(srv, live_app):
    base, _app = live_app
    ana = srv.user("ana")
    ws = open_ws(base, ana)
    assert frame(ws)["type"] == "HELLO"
    ws.close()
    assert srv.push("ana", {"practicePlans": [plan("p-away", "While away")]}).status_code == 200
    with open_ws(base, ana) as again:
        assert frame(again)["type"] == "HELLO"
        assert nothing(again, 0.6), "an event older than the connection is not replayed"
        pulled = srv.pull("ana").json()
        assert [p["id"] for p in pulled["practicePlans"]] == ["p-away"]
        srv.push("ana", {"practicePlans": [plan("p-after", "After")]})
        assert frame(again)["plan"]["id"] == "p-after"


def test_the_live_client_receives_events_and_maps_closes_to_errors(srv, live_app):
    from practiceplan.errors import NotAuthorisedError, RetryLaterError
    from practiceplan.sync.live import LiveClient

    base, app = live_app
    hub, ana = app.state.live, srv.user("ana")
    hub.per_user, hub.recheck = 1, 0.2
    client = LiveClient(base, ana, "dev_watch")
    assert "pps_" not in repr(client)
    with client.open() as first:
        assert first.hello["user"] == "ana"
        with pytest.raises(RetryLaterError) as busy:  # the second of one allowed: closed with 4429 before HELLO
            client.open()
        assert busy.value.status == live.CLOSE_TOO_MANY and ana not in busy.value.message
        assert first.receive(0.3) is None  # nothing yet: a timeout, not an error
        srv.push("ana", {"practicePlans": [plan("p-client")]})
        event = first.receive(2)
        assert event is not None and event["type"] == "PLAN_CREATED" and event["plan"]["id"] == "p-client"
        users.revoke(srv.engine, "ana")
        with pytest.raises(NotAuthorisedError) as revoked:
            first.receive(3)
        assert "no longer valid" in revoked.value.message and ana not in revoked.value.message


# ------------------------------------------------------------------------ two server processes, one database


@pytest.fixture
def two_processes(srv: Any, tmp_path: Path) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    started: list[ServeProcess] = []
    try:
        for index in (1, 2):
            started.append(ServeProcess(index, srv.url, tmp_path))
            started[-1].start()
        yield started[0], started[1]
    finally:
        for proc in started:
            proc.stop()


def test_two_server_processes_on_one_database_deliver_each_others_events(srv, two_processes):
    a, b = two_processes
    ana = srv.user("ana")
    with open_ws(b.base, ana) as on_b, open_ws(a.base, ana) as on_a:
        assert frame(on_b, 5)["type"] == "HELLO" and frame(on_a, 5)["type"] == "HELLO"
        body = {"changes": {"practicePlans": [plan("p-two", "Two processes")]}}
        began = time.monotonic()
        answer = httpx.post(f"{a.base}/api/sync/push", json=body, timeout=10,
                            headers={"Authorization": f"Bearer {ana}", "X-Device-ID": "dev_one"})
        assert answer.status_code == 200, answer.text
        event = frame(on_b, 1.0)
        assert time.monotonic() - began < 1.0  # about 0.03 s on PostgreSQL (NOTIFY), up to 0.2 s on SQLite
        assert event["type"] == "PLAN_CREATED" and event["plan"]["id"] == "p-two"
        assert frame(on_a, 1.0)["plan"]["id"] == "p-two"  # the writer's own process too
        assert nothing(on_b, 0.5), "each event once"


def test_a_shared_plan_edit_through_one_process_reaches_a_member_on_the_other_and_removal_stops_it(
        srv, two_processes):
    """Two clients of two users: the owner edits a shared plan through process A; the member, connected to
    process B, sees it within a second; once removed, the member gets MEMBER_REMOVED then ACCESS_REVOKED and
    nothing after."""
    a, b = two_processes
    ana, bob = srv.user("ana"), srv.user("bob")

    def call(base: str, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
        answer = httpx.request(method, base + path, json=body, timeout=10,
                               headers={"Authorization": f"Bearer {token}", "X-Device-ID": "dev_one"})
        assert answer.status_code == 200, answer.text
        return answer

    call(a.base, ana, "POST", "/api/sync/push", {"changes": {"practicePlans": [plan("p-duet", "Duet")]}})
    call(a.base, ana, "POST", "/api/plans/p-duet/members", {"user": "bob", "level": "view"})
    with open_ws(b.base, bob) as on_b:
        assert frame(on_b, 5)["type"] == "HELLO"
        edited = {**plan("p-duet", "Duet, slower"), "updatedAt": "2026-06-01T11:00:00.000Z"}
        began = time.monotonic()
        call(a.base, ana, "POST", "/api/sync/push", {"changes": {"practicePlans": [edited]}})
        event = frame(on_b, 1.0)
        assert time.monotonic() - began < 1.0
        assert event["type"] == "PLAN_UPDATED" and event["plan"]["title"] == "Duet, slower"
        call(a.base, ana, "DELETE", "/api/plans/p-duet/members/bob")
        assert [frame(on_b, 1.0)["type"], frame(on_b, 1.0)["type"]] == ["MEMBER_REMOVED", "ACCESS_REVOKED"]
        later = {**plan("p-duet", "Duet, private again"), "updatedAt": "2026-06-01T12:00:00.000Z"}
        call(a.base, ana, "POST", "/api/sync/push", {"changes": {"practicePlans": [later]}})
        assert nothing(on_b, 0.7), "a removed member receives nothing of the plan"


# ------------------------------------------------------------------------ the hub's parts


def test_a_full_queue_marks_the_connection_too_slow():
    sub = live.Subscriber(1, limit=3, since=0)
    for n in range(3):
        sub.offer(f"e{n}")
    assert asyncio.run(sub.take()) == ["e0", "e1", "e2"]
    for n in range(4):
        sub.offer(f"f{n}")
    assert sub.overflow and asyncio.run(sub.take()) is None
    sub.offer("late")
    assert not sub.pending


def test_ids_skipped_by_a_read_are_looked_for_again(srv):
    hub = live.Hub(srv.engine)
    hub.last_id = 10
    hub._advance([11, 14])
    assert hub.last_id == 14 and sorted(hub.gaps) == [12, 13]
    hub._advance([12])  # committed late: delivered, no longer awaited
    assert hub.last_id == 14 and sorted(hub.gaps) == [13]
    for gap in hub.gaps:
        hub.gaps[gap] = time.monotonic() - 1
    hub._advance([])
    assert hub.gaps == {}


def test_events_older_than_ten_minutes_are_deleted(srv):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def write(conn: Any) -> None:
        live.publish(conn, [1], {"type": "OLD"}, now - timedelta(minutes=11))
        live.publish(conn, [1], {"type": "NEW"}, now - timedelta(minutes=9))

    db.run(srv.engine, write, write=True)
    assert live.Hub(srv.engine).clean(now) == 1
    with db.connection(srv.engine) as conn:
        left = [json.loads(r.body)["type"] for r in conn.execute(db.live_events.select())]
    assert left == ["NEW"]


def test_an_event_id_is_never_reused_after_every_old_event_was_cleaned(srv):
    """Every hub remembers the last id it delivered: were ids reused once the table is emptied (SQLite reuses the
    largest rowid + 1 without AUTOINCREMENT), new events would sit at or below that and never be sent."""
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    db.run(srv.engine, lambda conn: live.publish(conn, [1, 2, 3], {"type": "OLD"}, now - timedelta(minutes=11)),
           write=True)
    hub = live.Hub(srv.engine)
    top = hub._max_id()
    assert hub.clean(now) == 3 and hub._max_id() == 0
    db.run(srv.engine, lambda conn: live.publish(conn, [1], {"type": "NEW"}, now), write=True)
    with db.connection(srv.engine) as conn:
        (new_id,) = [r.id for r in conn.execute(db.live_events.select())]
    assert new_id > top
