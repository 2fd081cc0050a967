"""The HTTP side of the sync server (Starlette): routing, bearer authentication, the per-token rate limit, the
request size limit, structured access logs and the error envelopes of ../shared/reference/sync-protocol.md §1.

Everything the endpoints do is in :mod:`practiceplan.server.service`; it runs in Starlette's thread pool (the
database drivers are synchronous). No exception text ever reaches a client: an unexpected error is logged
server-side and answered with Mirubato's generic 500 envelope.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from practiceplan.server import db, live, users
from practiceplan.server.protocol import INVALID_BODY, dump_json, parse_json
from practiceplan.server.service import Reply, SyncService, envelope

log = logging.getLogger("practiceplan.server")
access_log = logging.getLogger("practiceplan.server.access")

AUTHED = {
    ("POST", "/api/sync/pull"): "pull",
    ("POST", "/api/sync/push"): "push",
    ("POST", "/api/sync/batch"): "batch",
    ("GET", "/api/sync/status"): "status",
    ("POST", "/api/templates/adopt"): "adopt",
    ("GET", "/api/templates"): "gallery",
}

# shared plans (docs/collaboration.md): routes with path parameters, matched in order; every one is authed and
# rate limited like AUTHED
_SEG = r"([^/]{1,255})"
SHARING = (
    ("GET", re.compile(rf"^/api/plans/{_SEG}/members$"), "members"),
    ("POST", re.compile(rf"^/api/plans/{_SEG}/members$"), "share"),
    ("DELETE", re.compile(rf"^/api/plans/{_SEG}/members/{_SEG}$"), "unshare"),
    ("POST", re.compile(rf"^/api/plans/{_SEG}/invites$"), "invite"),
    ("POST", re.compile(r"^/api/invites/accept$"), "accept"),
    ("POST", re.compile(rf"^/api/plans/{_SEG}/transfer$"), "transfer"),
)


def sharing_route(method: str, path: str) -> tuple[str, tuple[str, ...]] | None:
    """(route name, path parameters) of a shared-plan endpoint, or None."""
    for m, pattern, name in SHARING:
        found = pattern.match(path)
        if m == method and found:
            return name, found.groups()
    return None


class RateLimiter:
    """A token bucket per user: ``per_minute`` sustained, ``burst`` at once. In-process (each worker process has
    its own buckets, so N workers allow up to N times the rate; docs/server.md)."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.buckets: dict[int, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: int) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self.lock:
            tokens, stamp = self.buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
            if tokens >= 1:
                self.buckets[key] = (tokens - 1, now)
                return 0.0
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise TooLarge
        except ValueError:
            pass
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _response(reply: Reply) -> Response:
    return Response(dump_json(reply.body), status_code=reply.status, headers=reply.headers,
                    media_type="application/json")


def bearer(header: str | None) -> tuple[str | None, bool]:
    """(token, present): only ``Authorization: Bearer <token>`` (never a cookie or the URL)."""
    if not header or not header.strip():
        return None, False
    if not header.startswith("Bearer "):
        return None, True
    token = header[len("Bearer "):].strip()
    return (token or None), True


def make_app(service: SyncService, *, cors_origins: tuple[str, ...] = ()) -> Starlette:
    limits = service.limits
    limiter = RateLimiter(limits.rate_per_minute, limits.rate_burst)
    engine = service.engine

    async def endpoint(request: Request) -> Response:
        path, method = request.url.path, request.method
        if path == "/health" and method in ("GET", "HEAD"):
            return _response(await run_in_threadpool(_health))
        route = AUTHED.get((method, path))
        shared = sharing_route(method, path) if route is None else None
        if route is None and shared is None:
            return _response(envelope(404, "Not found"))
        token, present = bearer(request.headers.get("authorization"))
        if not present:
            return _response(envelope(401, "No authentication token provided"))
        user = await run_in_threadpool(users.authenticate, engine, token or "")
        if user is None:
            return _response(envelope(401, "Invalid or expired token"))
        request.state.user = user.name
        wait = limiter.take(user.id)
        if wait > 0:
            reply = envelope(429, "Too many requests")
            reply.headers["retry-after"] = str(max(1, math.ceil(wait)))
            return _response(reply)
        if shared is not None:
            return await _shared(request, user, *shared)
        if route == "status":
            return _response(await run_in_threadpool(service.status, user))
        if route == "gallery":
            return _response(await run_in_threadpool(service.gallery, user))
        body, refused = await _body(request, optional=route == "pull")  # the pull body is optional (§2.1)
        if refused is not None:
            return refused
        device_id = request.headers.get("x-device-id")
        key = request.headers.get("x-idempotency-key")
        if key is not None and (not key.strip() or len(key) > limits.max_key_length):
            return _response(envelope(400, INVALID_BODY,
                                      details=f"X-Idempotency-Key: 1 to {limits.max_key_length} characters"))
        if route == "pull":
            reply = await run_in_threadpool(service.pull, user, body)
        elif route == "push":
            reply = await run_in_threadpool(service.push, user, body, device_id, key)
        elif route == "batch":
            reply = await run_in_threadpool(service.batch, user, body)
        else:
            reply = await run_in_threadpool(service.adopt, user, body, device_id, key)
        return _response(reply)

    async def _body(request: Request, *, optional: bool = False) -> tuple[Any, Response | None]:
        """(the JSON body or None, None), or (None, the 413/400 answer). ``optional``: a body that is not JSON
        counts as none."""
        try:
            raw = await _read_body(request, limits.max_body_bytes)
        except TooLarge:
            return None, _response(envelope(413, "Request body too large",
                                            details=f"the limit is {limits.max_body_bytes} bytes"))
        try:
            return (parse_json(raw) if raw else None), None
        except (ValueError, UnicodeDecodeError):
            if optional:
                return None, None
            return None, _response(envelope(400, INVALID_BODY, details="the body is not JSON"))

    async def _shared(request: Request, user: users.User, name: str, params: tuple[str, ...]) -> Response:
        body: Any = None
        if request.method == "POST":
            body, refused = await _body(request)
            if refused is not None:
                return refused
        if name == "members":
            reply = await run_in_threadpool(service.members, user, params[0])
        elif name == "share":
            reply = await run_in_threadpool(service.share, user, params[0], body)
        elif name == "unshare":
            reply = await run_in_threadpool(service.unshare, user, params[0], params[1])
        elif name == "invite":
            reply = await run_in_threadpool(service.invite, user, params[0], body)
        elif name == "accept":
            reply = await run_in_threadpool(service.accept, user, body)
        else:
            reply = await run_in_threadpool(service.transfer, user, params[0], body)
        return _response(reply)

    def _health() -> Reply:
        from practiceplan import __version__

        try:
            with db.connection(engine) as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception:  # noqa: BLE001 - reported as unhealthy, never as text
            log.exception("health check: the database is not reachable")
            return Reply(503, {"status": "unhealthy", "server": "practiceplan", "version": __version__})
        return Reply(200, {"status": "healthy", "server": "practiceplan", "version": __version__,
                           "database": engine.dialect.name})

    middleware = [Middleware(AccessLog)]
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(Middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "X-Device-ID", "X-Idempotency-Key"],
            expose_headers=["X-Idempotent-Replay", "Retry-After"]))
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    hub = live.Hub(engine)  # live updates (server/live.py): started here, or by the first connection

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await hub.start(wait=False)
        try:
            yield
        finally:
            await hub.stop()

    app = Starlette(routes=[WebSocketRoute("/api/live", live.endpoint(hub, bearer)),
                            Route("/{path:path}", endpoint, methods=methods)], middleware=middleware, lifespan=lifespan)
    app.state.live = hub
    return app


class AccessLog:
    """One JSON line per request on the ``practiceplan.server.access`` logger: time, method, path (never the
    query string), status, duration, response bytes, user name (never a token), client address. It is also the
    last line of defence: an exception is logged with its traceback and answered with the generic 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        start = time.perf_counter()
        sent = {"status": 0, "bytes": 0, "started": False}

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                sent["status"], sent["started"] = message["status"], True
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except ClientDisconnect:
            sent["status"] = sent["status"] or 499
        except Exception as exc:
            if isinstance(exc, db.Busy):
                log.warning("database busy: %s %s", scope.get("method"), scope.get("path"))
                reply = envelope(503, "Service busy, retry later")
                reply.headers["retry-after"] = "1"
            else:
                log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
                reply = envelope(500, "Internal server error")
            if not sent["started"]:
                body = dump_json(reply.body)
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
                await wrapped({"type": "http.response.start", "status": reply.status, "headers": headers})
                await wrapped({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("", 0)
                access_log.info(json.dumps({
                    "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "method": scope.get("method"), "path": scope.get("path"), "status": sent["status"],
                    "ms": round((time.perf_counter() - start) * 1000, 1), "bytes": sent["bytes"],
                    "user": (scope.get("state") or {}).get("user"), "client": client[0],
                }, separators=(",", ":")))
