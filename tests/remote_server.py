"""A tiny HTTP server on 127.0.0.1:0 for the sync client, login and auth tests: canned answers per route,
faults on demand (slow, closed without an answer, a body cut short), and a record of every request.

    with FakeServer(token="tok") as server:
        server.reply("GET", "/api/sync/status", 500, {"error": "boom"})
        url = server.url
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATUS_BODY = {"lastSyncTime": None, "syncToken": None, "pendingChanges": 0, "deviceCount": 1, "entityCount": 0}


@dataclass
class Canned:
    status: int = 200
    body: Any = None  # a dict/list is sent as JSON, bytes as they are, None as no body
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None  # "close": no answer at all; "truncate": Content-Length larger than the body
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (read timeout) leaves a broken pipe here: expected


class FakeServer:
    def __init__(self, token: str | None = None) -> None:
        self.token = token  # when set, status/pull/push answer 401 to any other bearer token
        self.routes: dict[tuple[str, str], Canned] = {}
        self.requests: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                           body))
                canned = owner.routes.get((self.command, self.path))
                if canned is None:
                    canned = owner.default(self.command, self.path, self.headers.get("Authorization"))
                if canned.delay:
                    time.sleep(canned.delay)
                if canned.fault == "close":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = canned.body if isinstance(canned.body, bytes) else (
                    b"" if canned.body is None else json.dumps(canned.body).encode())
                self.send_response(canned.status)
                for key, value in canned.headers.items():
                    self.send_header(key, value)
                if canned.body is not None and not isinstance(canned.body, bytes):
                    self.send_header("Content-Type", "application/json")
                extra = 100 if canned.fault == "truncate" else 0
                self.send_header("Content-Length", str(len(data) + extra))
                if canned.fault == "truncate":
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                if canned.fault == "truncate":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.httpd = _Quiet(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def default(self, method: str, path: str, authorization: str | None) -> Canned:
        if path.startswith("/api/") and self.token is not None and authorization != f"Bearer {self.token}":
            return Canned(401, {"success": False, "error": "Invalid or expired token", "code": 401})
        if (method, path) == ("GET", "/api/sync/status"):
            return Canned(200, STATUS_BODY)
        if (method, path) == ("POST", "/api/sync/pull"):
            return Canned(200, {"entries": [], "goals": [], "practicePlans": [], "planOccurrences": [],
                                "planTemplates": [], "syncToken": "sync_x", "timestamp": "2026-03-02T09:00:00.000Z"})
        if (method, path) == ("POST", "/api/sync/push"):
            return Canned(200, {"success": True, "syncToken": "sync_y", "conflicts": []})
        return Canned(404, {"success": False, "error": "Not found", "code": 404})

    def reply(self, method: str, path: str, status: int = 200, body: Any = None, *,
              headers: dict[str, str] | None = None, fault: str | None = None, delay: float = 0.0) -> None:
        self.routes[(method, path)] = Canned(status, body, dict(headers or {}), fault, delay)

    def fail_everything(self, status: int, body: Any = None, **kwargs: Any) -> None:
        for route in (("GET", "/api/sync/status"), ("POST", "/api/sync/pull"), ("POST", "/api/sync/push"),
                      ("POST", "/api/templates/adopt")):
            self.reply(*route, status, body, **kwargs)

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
