"""Run an ASGI app (normally :func:`tests.sync.mirubato.make_app`) on a real socket for the sync tests.

``serve(app)`` binds ``127.0.0.1`` on an ephemeral port *before* starting uvicorn (so the port is known
at once), runs uvicorn in a daemon thread with its own event loop, waits until it accepts connections,
and on exit asks it to stop and joins the thread.

It also gives the app an abort hook (ASGI scope extension ``"mirubato.abort"``) that the ``drop-after``
fault uses to kill the TCP connection without writing a single response byte: with only ASGI an app
cannot do that (uvicorn answers its own 500 if an app fails before starting a response).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

__all__ = ["serve"]


class _AbortHookApp:
    """ASGI wrapper adding ``scope["extensions"]["mirubato.abort"]``: a callable that aborts the
    transport of the connection that carries this request (matched by client address)."""

    def __init__(self, app: Any, server: uvicorn.Server) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            server = self.server

            def abort() -> bool:
                for conn in list(server.server_state.connections):
                    if tuple(getattr(conn, "client", None) or ()) == tuple(client or ()):
                        transport = getattr(conn, "transport", None)
                        if transport is not None:
                            transport.abort()
                            return True
                return False

            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "mirubato.abort": abort}}
        await self.app(scope, receive, send)


@contextlib.contextmanager
def serve(app: Any, *, startup_timeout: float = 5.0, websockets: bool = False) -> Iterator[str]:
    """Serve ``app`` on ``http://127.0.0.1:<free port>`` for the duration of the ``with`` block and yield
    that base URL (no trailing slash). Shutdown is clean: the server thread is joined before returning.
    ``websockets``: also serve WebSocket routes, and run the app's lifespan (the live-updates tests)."""
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every response costs a 40 ms delayed-ACK stall (headers and body are separate writes).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on" if websockets else "off",
        access_log=False, timeout_graceful_shutdown=2, timeout_keep_alive=5, http="h11", loop="asyncio",
        ws="websockets-sansio" if websockets else "none",
    )
    server = uvicorn.Server(config)
    config.app = _AbortHookApp(app, server)  # loaded lazily by uvicorn on serve(); wrap before that
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"mirubato-test-server:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if errors or not thread.is_alive():
                raise RuntimeError(f"test server failed to start: {errors[0] if errors else 'thread died'}")
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start in time")
            time.sleep(0.002)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if thread.is_alive():  # pragma: no cover - would be a leak; make it loud
            raise RuntimeError("test server thread did not stop")
