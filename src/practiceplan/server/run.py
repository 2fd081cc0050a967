"""Running the server: migrations once, then uvicorn (one or several worker processes), graceful shutdown
(uvicorn stops accepting on SIGTERM/SIGINT and finishes in-flight requests for up to 30 s), structured access
logs on stderr (JSON lines, no tokens, no query strings)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from typing import Any

from practiceplan.server import db
from practiceplan.server.service import Limits, SyncService

CONFIG_ENV = "PRACTICEPLAN_SERVER_CONFIG"  # how the parent hands its settings to uvicorn's worker processes
GRACE_SECONDS = 30


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("practiceplan.server.access")
    access.handlers[:] = [handler]
    access.setLevel(logging.INFO if level != "quiet" else logging.WARNING)
    access.propagate = False
    main = logging.getLogger("practiceplan.server")
    if not main.handlers:
        errors = logging.StreamHandler(sys.stderr)
        errors.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        main.addHandler(errors)
    main.setLevel(logging.INFO)


def app_from_env() -> Any:
    """uvicorn's factory in each worker: the app for the settings in ``PRACTICEPLAN_SERVER_CONFIG``."""
    from practiceplan.server.app import make_app

    config = json.loads(os.environ[CONFIG_ENV])
    _configure_logging(config.get("log", "info"))
    engine = db.make_engine(config["database"], pool_size=config.get("pool_size", 5))
    service = SyncService(engine, Limits(**config.get("limits", {})))
    return make_app(service, cors_origins=tuple(config.get("cors", ())))


def prepare(database: str) -> str:
    """Check the database URL, create or migrate the schema; returns the normalised URL."""
    url = db.database_url(database)
    engine = db.make_engine(url, pool_size=1)
    try:
        db.migrate(engine)
    finally:
        engine.dispose()
    return url


def serve(database: str, *, host: str, port: int, workers: int, limits: Limits | None = None,
          cors: tuple[str, ...] = (), log: str = "info") -> None:
    import uvicorn

    url = prepare(database)
    os.environ[CONFIG_ENV] = json.dumps({"database": url, "limits": dataclasses.asdict(limits or Limits()),
                                         "cors": list(cors), "log": log})
    _configure_logging(log)
    logging.getLogger("practiceplan.server").info(
        "practiceplan serve on http://%s:%d (%s, %d worker%s)", host, port, url.split("://")[0].split("+")[0],
        workers, "" if workers == 1 else "s")
    uvicorn.run("practiceplan.server.run:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_config=None, log_level="warning", proxy_headers=True,
                timeout_graceful_shutdown=GRACE_SECONDS, server_header=False, lifespan="on")
