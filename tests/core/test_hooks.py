"""hooks.run: the one runner of user commands (dip_hook, remind --notify-cmd)."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

from practiceplan import hooks

RECORDER = """\
import json, os, sys
out = sys.argv[1]
record = {"argv": sys.argv[2:], "stdin": json.load(sys.stdin),
          "env": {k: v for k, v in os.environ.items() if k.startswith("PRACTICEPLAN_")}}
open(out, "w", encoding="utf-8").write(json.dumps(record))
sys.stderr.write("from the hook\\n")
"""


def recorder(tmp_path: Path) -> tuple[str, Path]:
    script = tmp_path / "hook.py"
    script.write_text(RECORDER, encoding="utf-8")
    out = tmp_path / "called.json"
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(out))}", out


def python(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def test_env_stdin_and_placeholders(tmp_path, monkeypatch):
    monkeypatch.setenv("PRACTICEPLAN_FROM_PARENT", "kept")
    command, out = recorder(tmp_path)
    details = {"planId": "plan_1", "title": "Étude № 3", "minutes": 20}
    error = hooks.run(command + " --title={title} '{message} now' {unknown} plain", env={"PRACTICEPLAN_EVENT": "test"},
                      details=details, timeout=30,
                      placeholders={"title": "Étude $(touch x) {message}", "message": "at 18:00"})
    assert error is None
    call = json.loads(out.read_text(encoding="utf-8"))
    # replaced inside words, in one pass (a value's own "{message}" stays), unknown names kept, no shell
    assert call["argv"] == ["--title=Étude $(touch x) {message}", "at 18:00 now", "{unknown}", "plain"]
    assert call["stdin"] == details
    assert call["env"]["PRACTICEPLAN_EVENT"] == "test"  # added to the environment ...
    assert call["env"]["PRACTICEPLAN_FROM_PARENT"] == "kept"  # ... which is otherwise inherited
    assert not (Path.cwd() / "x").exists()


def test_stderr_is_kept_or_discarded(tmp_path, capfd):
    command, _ = recorder(tmp_path)
    assert hooks.run(command, env={}, details={}, timeout=30) is None
    assert "from the hook" in capfd.readouterr().err
    assert hooks.run(command, env={}, details={}, timeout=30, keep_stderr=False) is None
    assert "from the hook" not in capfd.readouterr().err


def test_a_hook_that_hangs_is_stopped_with_an_error_text():
    started = time.monotonic()
    error = hooks.run(python("import time; time.sleep(60)"), env={}, details={}, timeout=1)
    assert time.monotonic() - started < 30  # killed at the timeout, not waited for
    assert error == f"{sys.executable}: timed out after 1 s and was stopped"  # no Python repr, no 0.99992 s
    assert "timed out after 0.5 s" in (hooks.run(python("import time; time.sleep(60)"), env={}, details={},
                                                 timeout=0.5) or "")


def test_a_missing_program_is_an_error_text(tmp_path):
    missing = tmp_path / "no-such-program"
    error = hooks.run(f"{missing} --flag", env={}, details={}, timeout=5)
    assert error is not None and error.startswith(f"{missing}: ") and "No such file" in error
    assert "[Errno" not in error and "'" not in error
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    assert hooks.run(str(script), env={}, details={}, timeout=5) == f"{script}: permission denied (is it executable?)"


def test_exit_status(tmp_path):
    failing = python("import sys; sys.exit(3)")
    assert hooks.run(failing, env={}, details={}, timeout=30) == f"{sys.executable} exited with status 3"
    assert hooks.run(failing, env={}, details={}, timeout=30, check_status=False) is None


def test_commands_that_cannot_run():
    assert "cannot split" in (hooks.run("'unbalanced", env={}, details={}, timeout=5) or "")
    assert hooks.run("   ", env={}, details={}, timeout=5) == "the command is empty"
