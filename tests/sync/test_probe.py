"""Engine._probe: whether the server stored a batch under its idempotency key, read from the answers to an empty
push under that key (tests/sync/test_engine_regressions.py runs it against the Mirubato-mode server)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from practiceplan.errors import RemoteRejectedError, RetryLaterError
from practiceplan.sync.engine import EMPTY_PUSH, Engine

KEY = "pp-batch"


class Scripted:
    """A transport that answers pushes from a script: "ok", or a status (an int) turned into the client's error."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.pushes: list[tuple[bytes, str]] = []

    def push(self, body: bytes, key: str) -> dict[str, Any]:
        self.pushes.append((body, key))
        answer = self.answers.pop(0)
        if answer == "ok":
            return {"success": True}
        if answer in (400, 422):
            raise RemoteRejectedError(f"HTTP {answer}", status=answer)
        raise RetryLaterError(f"HTTP {answer}", status=answer)


def probe(*answers: Any) -> tuple[bool, list[tuple[bytes, str]]]:
    client = Scripted(*answers)
    store: Any = SimpleNamespace(conn=None)  # (the probe touches no database)
    engine = Engine(store, client, now=lambda: "2026-12-05T10:00:00.000Z", remote="http://127.0.0.1",
                    retry_delays=(0.0, 0.0), sleep=lambda _s: None)
    stored = engine._probe({"key": KEY})
    assert not client.answers, "every scripted answer was used"
    return stored, client.pushes


def test_a_free_key_means_the_batch_was_never_stored():
    stored, pushes = probe("ok")
    assert stored is False and pushes == [(EMPTY_PUSH, KEY)]


def test_our_servers_422_means_the_key_holds_the_batch():
    stored, pushes = probe(422)
    assert stored is True and pushes == [(EMPTY_PUSH, KEY)]


def test_mirubatos_500_counts_only_when_a_push_under_a_new_key_passes_and_the_probe_fails_again():
    stored, pushes = probe(500, "ok", 500)
    assert stored is True
    assert [k for _b, k in pushes][0::2] == [KEY, KEY] and pushes[1][1] != KEY
    assert {b for b, _k in pushes} == {EMPTY_PUSH}


def test_a_500_that_passes_on_the_second_probe_was_a_passing_failure():
    stored, _pushes = probe(500, "ok", "ok")
    assert stored is False


@pytest.mark.parametrize("answers", [(500, 500, 500, 500), (429,), (503,), (400,)])
def test_a_server_that_cannot_answer_fails_the_sync_and_decides_nothing(answers):
    with pytest.raises((RetryLaterError, RemoteRejectedError)):
        probe(*answers)
