"""The live-updates client (docs/collaboration.md "Live updates"): a WebSocket to ``/api/live`` of a
`practiceplan serve` server. The only module that imports ``websockets``.

The upgrade request carries ``Authorization: Bearer <token>``, ``X-Device-ID`` and ``User-Agent`` (the token is
never in the URL). ``ws://`` is used only where the remote may be plain http (this computer: sync/client.py
``check_url``), else ``wss://``; on loopback no proxy from the environment sees the request.

What goes wrong becomes one of the project's errors, with a message of our own naming the host, never the token:

========================================================  =============================================
refused, DNS, TLS, timeout, HTTP 404 or another status     RemoteUnavailableError (69)
closed before HELLO (4429: too many connections)           RetryLaterError (75)
HTTP 401/403 at the upgrade, or a close with 4401          NotAuthorisedError (77)
the connection ends later (network, server restart,        :class:`Lost` (not an error: reconnect, then
4008 too slow)                                             pull to catch up)
========================================================  =============================================
"""

from __future__ import annotations

import json
import random
import ssl
from typing import Any
from urllib.parse import urlsplit

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from practiceplan import __version__
from practiceplan.errors import InvalidInputError, NotAuthorisedError, RemoteUnavailableError, RetryLaterError
from practiceplan.sync.client import CHECK_HINT, LOGIN_HINT, check_url, is_loopback

LIVE_PATH = "/api/live"
CLOSE_UNAUTHORISED, CLOSE_TOO_SLOW, CLOSE_TOO_MANY = 4401, 4008, 4429
NOT_LIVE_HINT = "live updates need a `practiceplan serve` server (a Mirubato server has none): use `practiceplan sync`"


class Lost(Exception):
    """The live connection ended after it was open; ``code`` is the WebSocket close code (None: no close frame,
    the network dropped). Reconnect and pull: events are not replayed."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def live_url(base_url: str) -> str:
    """The WebSocket URL of ``base_url``'s live endpoint: ``ws://`` for a (checked, loopback) ``http://``
    remote, ``wss://`` for ``https://``."""
    checked = check_url(base_url)
    scheme, rest = checked.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{LIVE_PATH}"


class Backoff:
    """Waits between reconnections: 0.5 s doubling to 30 s, each with ±20 % jitter; :meth:`reset` after a
    connection that worked."""

    def __init__(self, first: float = 0.5, cap: float = 30.0, jitter: float = 0.2,
                 rng: random.Random | None = None) -> None:
        self.first, self.cap, self.jitter = first, cap, jitter
        self.rng = rng or random.Random()
        self.base = first

    def next(self) -> float:
        delay = self.base * (1 + self.jitter * (2 * self.rng.random() - 1))
        self.base = min(self.base * 2, self.cap)
        return round(min(delay, self.cap), 2)

    def reset(self) -> None:
        self.base = self.first


class LiveClient:
    """One server, one token, one device; :meth:`open` makes a :class:`Live` connection."""

    def __init__(self, base_url: str, token: str, device_id: str, *, open_timeout: float = 10.0) -> None:
        from practiceplan.sync.credentials import check_token

        self.base_url = check_url(base_url)
        self.url = live_url(self.base_url)
        self.host = urlsplit(self.base_url).netloc
        self._token = check_token(token)
        if not device_id or not device_id.isascii() or not device_id.isprintable() or " " in device_id:
            raise InvalidInputError("the device id must be printable ASCII without spaces")
        self.device_id = device_id
        self.open_timeout = open_timeout

    def __repr__(self) -> str:
        return f"LiveClient(url={self.url!r}, device_id={self.device_id!r}, token=<set>)"

    def _redact(self, text: object) -> str:
        """Server-supplied text, one line, short, with our token (should a server echo it) blanked."""
        line = " ".join(str(text).split()).replace(self._token, "***")
        return line if len(line) <= 160 else line[:157] + "..."

    def open(self) -> Live:
        """Connect and read the server's ``HELLO``."""
        where = f"{self.host} ({LIVE_PATH})"
        loopback = is_loopback(urlsplit(self.base_url).hostname or "")
        options: dict[str, Any] = {}
        if self.url.startswith("wss://"):
            options["ssl"] = ssl.create_default_context()
        try:
            ws = connect(self.url, additional_headers={"Authorization": f"Bearer {self._token}",
                                                       "X-Device-ID": self.device_id},
                         user_agent_header=f"practiceplan/{__version__}", open_timeout=self.open_timeout,
                         proxy=None if loopback else True, compression=None, max_size=16 * 1024 * 1024,
                         **options).__enter__()  # entered: the connection itself, whatever websockets' version
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise NotAuthorisedError(f"{where} refused the token (HTTP {status})", hint=LOGIN_HINT) from None
            if status == 404:
                raise RemoteUnavailableError(f"{self.base_url} has no live updates (HTTP 404 for {LIVE_PATH})",
                                             hint=NOT_LIVE_HINT) from None
            raise RemoteUnavailableError(f"{where} answered the live connection with HTTP {status}",
                                         hint=CHECK_HINT) from None
        except (InvalidURI, InvalidHandshake):
            raise RemoteUnavailableError(f"{where} did not accept a live (WebSocket) connection",
                                         hint=NOT_LIVE_HINT) from None
        except TimeoutError:
            raise RemoteUnavailableError(f"cannot reach {self.host}: no connection within {self.open_timeout:g}s",
                                         hint=CHECK_HINT) from None
        except (OSError, ssl.SSLError, websockets.exceptions.WebSocketException):
            raise RemoteUnavailableError(
                f"cannot reach {self.host} (connection refused, unknown host, or a TLS failure)",
                hint=CHECK_HINT) from None
        live = Live(ws, self)
        try:
            hello = live.receive(self.open_timeout)
        except Lost as lost:  # closed before HELLO: 4429 (too many connections of this user), a restart
            live.close()
            raise RetryLaterError(lost.message, hint="try again later", status=lost.code) from None
        except BaseException:
            live.close()
            raise
        if not isinstance(hello, dict) or hello.get("type") != "HELLO":
            live.close()
            raise RemoteUnavailableError(f"{where} did not greet the live connection with HELLO",
                                         hint=NOT_LIVE_HINT)
        live.hello = hello
        return live


class Live:
    """An open live connection: :meth:`receive` the server's events one by one."""

    def __init__(self, ws: ClientConnection, client: LiveClient) -> None:
        self._ws, self._client = ws, client
        self.hello: dict[str, Any] = {}

    def __enter__(self) -> Live:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001 - closing a connection that is already gone
            pass

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event (a JSON object), or None when ``timeout`` seconds passed without one. Raises
        :class:`Lost` when the connection ended, NotAuthorisedError (77) when the server closed it because the
        token is no longer valid. Frames that are not a JSON object are skipped."""
        host = self._client.host
        while True:
            try:
                frame = self._ws.recv(timeout=timeout)
            except TimeoutError:
                return None
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                reason = self._client._redact(exc.rcvd.reason) if exc.rcvd is not None and exc.rcvd.reason else ""
                if code == CLOSE_UNAUTHORISED:
                    raise NotAuthorisedError(f"{host} closed the live connection: the token is no longer valid",
                                             hint=LOGIN_HINT) from None
                said = f" ({reason})" if reason else ""
                raise Lost(f"{host} closed the live connection{said}" if code else
                           f"the live connection to {host} dropped", code) from None
            except (OSError, websockets.exceptions.WebSocketException):
                raise Lost(f"the live connection to {host} dropped") from None
            if isinstance(frame, bytes):
                try:
                    frame = frame.decode("utf-8")
                except UnicodeDecodeError:
                    continue
            try:
                event = json.loads(frame)
            except (ValueError, RecursionError):
                continue
            if isinstance(event, dict):
                return event
