"""The HTTP client of the sync protocol (sync-protocol.md §1, §2): the only module that imports httpx.

Every request carries ``Authorization: Bearer <token>`` (when there is one), ``X-Device-ID``,
``Content-Type: application/json`` and ``User-Agent: practiceplan/<version>``; a push adds
``X-Idempotency-Key``. Redirects are never followed and every request has a timeout (connect and read).

What goes wrong becomes one of the project's errors (errors.py), with a message of our own that names the
host, never the token (httpx's exceptions are not shown: they can carry request details):

=========================================================  ==========================================
connection refused, DNS, TLS, connect timeout, a 3xx, 404  RemoteUnavailableError (69)
401, 403                                                   NotAuthorisedError (77)
429 (``retry_after`` from Retry-After), 5xx                RetryLaterError (75)
read timeout, connection dropped mid-answer, a 2xx whose   RetryLaterError (75): the outcome is unknown;
body is not a whole JSON object                            retry a push with the same idempotency key
400, 413, 422 (and other 4xx)                              RemoteRejectedError (65) with status and body
=========================================================  ==========================================

The sharing endpoints (docs/collaboration.md, capability ``sharing``) map two statuses differently: a 404 with
the server's JSON error (unknown plan, user or invite) is NotFoundError (3) with the server's message, a 404
without one (a server that has no such route) says the server does not support shared plans (69), and a 403 is
"only the plan's owner can do this" (77).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from practiceplan import __version__
from practiceplan.errors import (
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
    PracticePlanError,
    RemoteRejectedError,
    RemoteUnavailableError,
    RetryLaterError,
)

STATUS_PATH = "/api/sync/status"
PULL_PATH = "/api/sync/pull"
PUSH_PATH = "/api/sync/push"
ADOPT_PATH = "/api/templates/adopt"
GALLERY_PATH = "/api/templates"
GALLERY_CAPABILITY = "template-gallery"
SHARING_CAPABILITY = "sharing"
INVITE_ACCEPT_PATH = "/api/invites/accept"
CHECK_HINT = "check the address with `practiceplan remote show` and your connection"
LOGIN_HINT = "run `practiceplan login` to store a valid token"
RETRY_HINT = "run the command again later; nothing is lost"
UNKNOWN_HINT = "run the command again: a retried push is recognised by the server, nothing is sent twice"
SET_HINT = "e.g. practiceplan remote set https://sync.example.com"
REJECTED = (400, 413, 422)


@dataclass
class Response:
    """A parsed 2xx answer: its status, its JSON object, and whether it was replayed from the server's
    idempotency cache (``X-Idempotent-Replay: true``)."""

    status: int
    body: dict[str, Any]
    replay: bool


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1: this computer, where plain http is allowed."""
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """The remote's base URL, normalised (scheme and host in lower case, no trailing '/'), or
    InvalidInputError (exit 65) with a hint: it must be http(s) with a host, carry no user name, password,
    query or fragment, and use HTTPS unless the host is this computer (localhost, 127.0.0.0/8, ::1)."""
    text = (url or "").strip()
    shown = text if len(text) <= 200 else text[:197] + "..."
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidInputError(f"'{shown}' is not a valid URL", hint=SET_HINT) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"'{shown}' is not an http(s) URL with a host", hint=SET_HINT)
    if "@" in parts.netloc:
        raise InvalidInputError("the remote URL must not contain a user name or password",
                                hint="give the address alone, then store the token with `practiceplan login`")
    if parts.query or parts.fragment or any(c.isspace() or ord(c) < 0x20 for c in text):
        raise InvalidInputError(f"'{shown}' must be a plain address (no query, fragment or spaces)", hint=SET_HINT)
    host = parts.hostname.lower()
    if scheme == "http" and not is_loopback(host):
        raise InvalidInputError(
            f"plain http to {host} would send your token unencrypted: HTTPS is required except on this "
            "computer (localhost, 127.0.0.1, ::1)",
            hint=f"use https://{parts.netloc}{parts.path.rstrip('/')}")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds from now: delta-seconds (``120``) or an HTTP-date; None when absent or
    unreadable. A date in the past is 0."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    from practiceplan import clock

    return max(0.0, (when - clock.now()).total_seconds())


def no_gallery(host: str) -> RemoteUnavailableError:
    """The server has no template gallery (exit 69)."""
    return RemoteUnavailableError(
        f"{host} has no template gallery: it is not a `practiceplan serve` server (a Mirubato server lists no "
        "one else's templates)",
        hint="adopt a template whose id you know with `practiceplan template adopt --remote ID`, or import a "
             "signed template file")


def no_sharing(host: str) -> RemoteUnavailableError:
    """The server does not support shared plans (exit 69)."""
    return RemoteUnavailableError(
        f"the server at {host} does not support shared plans",
        hint="sharing needs a `practiceplan serve` server (a Mirubato server has no sharing); check the address "
             "with `practiceplan remote show`")


def not_owner(host: str, said: str = "") -> NotAuthorisedError:
    """The server refused a sharing action to a member (HTTP 403, exit 77)."""
    detail = f" ({said})" if said else ""
    return NotAuthorisedError(f"only the plan's owner can do this{detail}",
                              hint="ask the owner, see who it is with `practiceplan plan members PLAN`")


def plan_path(plan_id: str, *rest: str) -> str:
    """``/api/plans/{planId}/...`` with every part percent-encoded (ids and user names never change the path)."""
    from urllib.parse import quote

    return "/".join(["/api/plans", *(quote(part, safe="") for part in (plan_id, *rest))])


def _json(content: bytes) -> Any:
    """The parsed JSON document, or None when ``content`` is not one."""
    try:
        return json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _json_object(content: bytes) -> dict[str, Any] | None:
    value = _json(content)
    return value if isinstance(value, dict) else None


class Client:
    """One server, one token, one device. Use as a context manager, or call :meth:`close`."""

    def __init__(self, base_url: str, token: str | None, device_id: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = check_url(base_url)
        self.host = urlsplit(self.base_url).netloc
        self.device_id = device_id
        self.timeout = timeout
        self._token = token or None
        if self._token is not None:
            from practiceplan.sync.credentials import check_token

            self._token = check_token(self._token)
        if not device_id or not device_id.isascii() or not device_id.isprintable() or " " in device_id:
            raise InvalidInputError("the device id must be printable ASCII without spaces")
        headers = {"X-Device-ID": device_id, "Content-Type": "application/json",
                   "User-Agent": f"practiceplan/{__version__}", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        # on loopback (plain http allowed) no proxy from the environment may see the request and its token
        loopback = is_loopback(urlsplit(self.base_url).hostname or "")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, follow_redirects=False,
                                  timeout=httpx.Timeout(timeout), transport=transport, trust_env=not loopback)

    def __repr__(self) -> str:
        return (f"Client(base_url={self.base_url!r}, device_id={self.device_id!r}, "
                f"token={'<set>' if self._token else None})")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ the endpoints

    def status(self) -> dict[str, Any]:
        """``GET /api/sync/status``: the server's view of this user (§2.4)."""
        return self._call("GET", STATUS_PATH).body

    def pull(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """``POST /api/sync/pull`` with ``body`` (``{}`` when None); the server's snapshot (§2.1)."""
        return self._call("POST", PULL_PATH, content=self._encode(body or {})).body

    def push(self, body: bytes, idempotency_key: str) -> Response:
        """``POST /api/sync/push`` with ``body`` sent verbatim and ``X-Idempotency-Key`` (§2.2, §5.8)."""
        if not idempotency_key or not idempotency_key.isascii() or not idempotency_key.isprintable():
            raise InvalidInputError("the idempotency key must be printable ASCII")
        return self._call("POST", PUSH_PATH, content=body, headers={"X-Idempotency-Key": idempotency_key})

    def adopt(self, template_id: str, customization: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/templates/adopt`` (§2.5): the new plan and its occurrences, as the server made them."""
        payload = {"templateId": template_id, "customization": customization}
        return self._call("POST", ADOPT_PATH, content=self._encode(payload)).body

    def gallery(self) -> list[dict[str, Any]]:
        """``GET /api/templates`` (a `practiceplan serve` extension, advertised as ``template-gallery`` in the
        status capabilities): the published templates this user may adopt, with their ``adoptionCount``. A server
        without it (Mirubato) answers 404: RemoteUnavailableError (69) saying so."""
        response = self._send("GET", GALLERY_PATH, None, None)
        if response.status_code == 404:
            raise no_gallery(self.host)
        if not 200 <= response.status_code < 300:
            raise self._error("GET", GALLERY_PATH, response)
        body = _json_object(response.content)
        items = body.get("templates") if body is not None else None
        if not isinstance(items, list):
            raise RemoteUnavailableError(f"{self.host} answered GET {GALLERY_PATH} without a 'templates' list",
                                         hint=CHECK_HINT)
        return [i for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)]

    # ------------------------------------------------------------------ shared plans (capability "sharing")

    def members(self, plan_id: str) -> dict[str, Any]:
        """``GET /api/plans/{planId}/members``: ``{planId, owner, level (the caller's), members: [{user, level,
        addedAt}]}``."""
        return self._sharing("GET", plan_path(plan_id, "members"))

    def share(self, plan_id: str, user: str, level: str) -> dict[str, Any]:
        """``POST /api/plans/{planId}/members`` ``{user, level}`` (owner only): the members after the change."""
        return self._sharing("POST", plan_path(plan_id, "members"), {"user": user, "level": level})

    def unshare(self, plan_id: str, user: str) -> dict[str, Any]:
        """``DELETE /api/plans/{planId}/members/{user}`` (the owner, or a member removing itself: then
        ``{planId, left: true}``)."""
        return self._sharing("DELETE", plan_path(plan_id, "members", user))

    def invite(self, plan_id: str, level: str, expires_seconds: int) -> dict[str, Any]:
        """``POST /api/plans/{planId}/invites``: a single-use invite ``{token, planId, level, expiresAt}``."""
        return self._sharing("POST", plan_path(plan_id, "invites"),
                             {"level": level, "expiresInSeconds": int(expires_seconds)})

    def accept_invite(self, token: str) -> dict[str, Any]:
        """``POST /api/invites/accept`` ``{token}``: ``{planId, owner, level}``."""
        return self._sharing("POST", INVITE_ACCEPT_PATH, {"token": token}, secret=token)

    def transfer(self, plan_id: str, user: str) -> dict[str, Any]:
        """``POST /api/plans/{planId}/transfer`` ``{user}``: the members after the change (``user`` owns it)."""
        return self._sharing("POST", plan_path(plan_id, "transfer"), {"user": user})

    def _sharing(self, method: str, path: str, payload: dict[str, Any] | None = None, *,
                 secret: str | None = None) -> dict[str, Any]:
        """One sharing request; ``secret`` (an invite token) is blanked from any server text shown."""
        response = self._send(method, path, self._encode(payload) if payload is not None else None, None)
        status = response.status_code
        if 200 <= status < 300:
            return self._object(method, path, response, "check with `practiceplan plan members PLAN`")
        body = _json(response.content)
        error = body.get("error") if isinstance(body, dict) else None
        said = self._redact(error) if isinstance(error, str) else ""
        if secret:
            said = said.replace(secret, "***")
        if status == 404:
            if not said:
                raise no_sharing(self.host)
            if path == INVITE_ACCEPT_PATH:
                raise NotFoundError(f"{self.host}: {said}", hint="an invite works once and expires: ask the plan's "
                                                                 "owner for a new one")
            raise NotFoundError(f"{self.host}: {said}", hint="check the name or id: `practiceplan plan members PLAN` "
                                                             "lists who takes part")
        if status == 403:
            raise not_owner(self.host, said)
        error_ = self._error(method, path, response)
        if secret:
            error_.message = error_.message.replace(secret, "***")
        raise error_

    # ------------------------------------------------------------------ the one request path

    @staticmethod
    def _encode(document: dict[str, Any]) -> bytes:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")

    def _redact(self, text: str) -> str:
        """Server-supplied text, one line, short, with our token (should a server echo it) blanked."""
        line = " ".join(str(text).split())
        if self._token:
            line = line.replace(self._token, "***")
        return line if len(line) <= 160 else line[:157] + "..."

    def _call(self, method: str, path: str, *, content: bytes | None = None,
              headers: dict[str, str] | None = None) -> Response:
        response = self._send(method, path, content, headers)
        status = response.status_code
        if 200 <= status < 300:
            body = self._object(method, path, response, UNKNOWN_HINT)
            return Response(status, body, response.headers.get("x-idempotent-replay", "").lower() == "true")
        raise self._error(method, path, response)

    def _object(self, method: str, path: str, response: httpx.Response, hint: str) -> dict[str, Any]:
        """A 2xx answer's JSON object; anything else means the outcome is unknown (retry later)."""
        body = _json_object(response.content)
        if body is None:
            raise RetryLaterError(
                f"{self.host} answered {method} {path} with HTTP {response.status_code} but not a whole JSON "
                "object: the outcome is unknown", hint=hint, status=response.status_code)
        return body

    def _send(self, method: str, path: str, content: bytes | None,
              headers: dict[str, str] | None) -> httpx.Response:
        where = f"{self.host} ({method} {path})"
        try:
            return self._http.request(method, path, content=content, headers=headers)
        except httpx.ConnectTimeout:
            raise RemoteUnavailableError(f"cannot reach {self.host}: no connection within {self.timeout:g}s",
                                         hint=CHECK_HINT) from None
        except (httpx.ConnectError, httpx.ProxyError, httpx.UnsupportedProtocol):
            raise RemoteUnavailableError(
                f"cannot reach {self.host} (connection refused, unknown host, or a TLS failure)",
                hint=CHECK_HINT) from None
        except httpx.TimeoutException:  # read, write or pool timeout: the request may have been processed
            raise RetryLaterError(f"{where} did not answer within {self.timeout:g}s: the outcome is unknown",
                                  hint=UNKNOWN_HINT) from None
        except httpx.HTTPError:  # the connection dropped mid-request or mid-answer, a garbled answer
            raise RetryLaterError(f"the connection to {where} broke before a complete answer: the outcome is "
                                  "unknown", hint=UNKNOWN_HINT) from None
        except httpx.InvalidURL:
            raise InvalidInputError(f"'{self.base_url}' is not a usable address", hint=SET_HINT) from None

    def _error(self, method: str, path: str, response: httpx.Response) -> PracticePlanError:
        status = response.status_code
        body = _json(response.content)
        error = body.get("error") if isinstance(body, dict) else None
        said = self._redact(error) if isinstance(error, str) else ""
        detail = f": {said}" if said else ""
        where = f"{self.host} ({method} {path})"
        if 300 <= status < 400:
            location = self._redact(response.headers.get("location", "")) or "(no Location)"
            return RemoteUnavailableError(
                f"{where} answered HTTP {status}, a redirect to {location}; redirects are not followed",
                hint="set the remote to the final address: practiceplan remote set URL")
        if status in (401, 403):
            return NotAuthorisedError(f"{where} refused the token (HTTP {status}){detail}", hint=LOGIN_HINT)
        if status == 404 and path == ADOPT_PATH and said == "Template not found":
            return NotFoundError(f"{self.host} has no template with that id (HTTP 404)",
                                 hint="check the template id")
        if status == 404:
            return RemoteUnavailableError(
                f"{self.base_url} is not a practiceplan/Mirubato sync server (HTTP 404 for {path})",
                hint=CHECK_HINT)
        if status == 429:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            when = f" (retry after {retry_after:g}s)" if retry_after is not None else ""
            return RetryLaterError(f"{where} is rate limiting requests (HTTP 429){when}", hint=RETRY_HINT,
                                   retry_after=retry_after, status=status)
        if status >= 500 or status == 408:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            return RetryLaterError(f"{where} failed with HTTP {status}{detail}", hint=RETRY_HINT,
                                   retry_after=retry_after, status=status)
        if 400 <= status < 500:
            what = {413: "too large", 422: "unprocessable"}.get(status, "invalid")
            return RemoteRejectedError(f"{where} rejected the request as {what} (HTTP {status}){detail}",
                                       hint="nothing was changed on the server", status=status, body=body)
        return RemoteUnavailableError(f"{where} answered with unexpected HTTP {status}", hint=CHECK_HINT)
