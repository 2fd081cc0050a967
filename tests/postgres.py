"""The throwaway PostgreSQL cluster of a test session, shared by the server tests (tests/server) and the sync
scenario tests that run against our server (tests/sync): ``pg_dsn`` (registered in tests/conftest.py, so one cluster
serves the whole session) and ``fresh_schema(dsn)`` (a new schema per test, dropped afterwards).

``pg_dsn``: the DSN in ``PRACTICEPLAN_TEST_POSTGRES`` if set, else a throwaway cluster started here with
``initdb``/``pg_ctl`` (from PATH or /usr/lib/postgresql/*/bin) on 127.0.0.1 and a free port, as an unprivileged user
(PostgreSQL refuses to run as root: when we are root, the commands run through ``runuser -u postgres``, in a folder
owned by that user), stopped at the end of the session. When neither is possible the PostgreSQL tests fail if ``CI``
is set (never a silent skip in CI) and are skipped otherwise.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest


def _pg_bin() -> str | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(found))
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")) and os.path.exists(os.path.join(folder, "pg_ctl")):
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unprivileged() -> tuple[list[str], str | None]:
    """(command prefix, owner) to run PostgreSQL's programs as someone other than root."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", name, "--"], name
        if shutil.which("setpriv"):
            entry = pwd.getpwnam(name)
            return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"], name
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A PostgreSQL server for the session (see the module docstring)."""
    given = os.environ.get("PRACTICEPLAN_TEST_POSTGRES")
    if given:
        yield given
        return
    bindir = _pg_bin()
    if bindir is None:
        message = "PostgreSQL is not available: set PRACTICEPLAN_TEST_POSTGRES or install initdb/pg_ctl"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    prefix, owner = _unprivileged()
    folder = tempfile.mkdtemp(prefix="pp-server-pg-")  # under /tmp: reachable by the unprivileged user
    data = os.path.join(folder, "data")
    if owner:
        entry = pwd.getpwnam(owner)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    port = free_port()
    log = os.path.join(folder, "server.log")

    def pg(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, cwd=folder, timeout=120)

    try:
        pg(os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
           "--no-sync", "--locale=C")
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        pg(os.path.join(bindir, "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "-t", "60", "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        message = f"could not start a throwaway PostgreSQL cluster: {exc} {detail.decode(errors='replace')[-500:]}"
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(Exception):
            pg(os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


_schemas = itertools.count(1)


@contextlib.contextmanager
def fresh_schema(dsn: str, prefix: str = "t") -> Iterator[str]:
    """A new, empty schema in ``dsn``'s database for the ``with`` block; yields a DSN whose search_path is it."""
    import psycopg

    schema = f"{prefix}{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    try:
        yield f"{dsn}{sep}options=-csearch_path%3D{schema}"
    finally:
        with contextlib.suppress(Exception), psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
