"""A `practiceplan serve` subprocess on 127.0.0.1 for the server tests that need real processes (several on one
database, or killed and restarted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.postgres import free_port


class ServeProcess:
    """One `practiceplan serve` on ``url`` (its database) with its log in ``home``; :meth:`start` returns once it
    answers ``/health``, and may be called again after :meth:`kill` (``starts`` counts the starts)."""

    def __init__(self, index: int, url: str, home: Path) -> None:
        self.index, self.url, self.home = index, url, home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = home / f"serve-{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.up = threading.Event()
        self.starts = 0
        self.start_seconds: list[float] = []

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRACTICEPLAN_")}
        env.update(PRACTICEPLAN_HOME=str(self.home), NO_COLOR="1")
        cmd = [sys.executable, "-m", "practiceplan", "serve", "--database", self.url, "--host", "127.0.0.1",
               "--port", str(self.port), "--rate", "0", "--quiet"]
        if os.geteuid() == 0:  # CI runs as root; the server refuses that without the flag
            cmd.append("--allow-root")
        began = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=self.home)
        deadline = began + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve {self.index}: the server exited with {self.proc.returncode}:\n"
                                     + self.log.read_text(errors="replace")[-3000:])
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve {self.index}: the server did not answer /health within 60 s")
            time.sleep(0.02)
        self.starts += 1
        self.start_seconds.append(time.monotonic() - began)
        self.up.set()

    def kill(self) -> None:
        self.up.clear()  # before the kill: a client that sees its connection die then waits for the restart
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        self.up.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
