"""`practiceplan watch`: follow the server's live events (sync/live.py), syncing on each (re)connection and
shortly after each event so that a missed frame or a gap while disconnected never loses anything (the pull
brings the change; events are not replayed).

The loop never ends on its own except when the token is refused (NotAuthorisedError, exit 77), when the server is
unreachable at the very first connection (RemoteUnavailableError, exit 69), or after ``once`` events. A lost
connection is reported once through ``on_lost`` and retried with backoff (0.5 s doubling to 30 s) until it
is back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from practiceplan.errors import RemoteUnavailableError, RetryLaterError

if TYPE_CHECKING:
    from practiceplan.services.session import Session
    from practiceplan.sync.engine import Summary

DEBOUNCE = 0.5  # seconds after the last event before the sync it calls for
TRANSIENT = (RemoteUnavailableError, RetryLaterError)


class Watch:
    def __init__(self, session: Session, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.s = session
        self.sleep = sleep
        self.seen = 0

    def client(self) -> Any:
        """The live client for the remote, with its stored token (NotAuthorisedError 77 without one)."""
        from practiceplan.sync.live import LiveClient

        remote = self.s.remote
        url = remote.require_url()
        return LiveClient(url, remote.token(url), remote.device_id())

    def run(self, *, on_event: Callable[[dict[str, Any]], None], on_lost: Callable[[str, float], None],
            on_synced: Callable[[Summary], None] | None = None, sync: bool = True, once: int | None = None) -> int:
        """Follow events until ``once`` of them were seen (forever when None); returns how many were seen.
        ``on_synced`` gets the summary of each catch-up sync (none with ``sync`` False)."""
        from practiceplan.sync.live import Backoff, Lost

        client = self.client()
        backoff, first, quiet = Backoff(), True, False
        self.seen = 0
        while True:
            try:
                live = client.open()
            except TRANSIENT as exc:
                if first:
                    raise
                self._pause(backoff, exc.message, None if quiet else on_lost)
                quiet = True  # one line per lost connection, not one per failed attempt
                continue
            first, quiet = False, False
            try:
                with live:
                    backoff.reset()
                    self._follow(live, once, sync, on_event, on_synced)
                    return self.seen
            except Lost as lost:
                self._pause(backoff, lost.message, on_lost)
            except TRANSIENT as exc:  # the catch-up sync could not reach the server
                self._pause(backoff, exc.message, on_lost)
            quiet = True

    def _pause(self, backoff: Any, why: str, on_lost: Callable[[str, float], None] | None) -> None:
        delay = backoff.next()
        if on_lost is not None:
            on_lost(why, delay)
        self.sleep(delay)

    def _follow(self, live: Any, once: int | None, sync: bool,
                on_event: Callable[[dict[str, Any]], None], on_synced: Callable[[Summary], None] | None) -> None:
        """Catch up, then hand each event on (counted in ``seen``, across reconnections); returns once ``once``
        events were seen, raises Lost when the connection ends."""
        if sync:
            self._sync(on_synced)
        due: float | None = None
        while True:
            wait = None if due is None else max(0.0, due - time.monotonic())
            event = live.receive(wait)
            if event is None:
                if due is not None and time.monotonic() >= due:
                    due = None
                    self._sync(on_synced)
                continue
            if event.get("type") == "HELLO":
                continue
            on_event(event)
            self.seen += 1
            if once is not None and self.seen >= once:
                if sync:  # best effort: the event is out; a server gone now is caught up by the next sync
                    with contextlib.suppress(*TRANSIENT):
                        self._sync(on_synced)
                return
            if sync:
                due = time.monotonic() + DEBOUNCE

    def _sync(self, on_synced: Callable[[Summary], None] | None) -> None:
        summary = self.s.sync.run()
        if on_synced is not None:
            on_synced(summary)
