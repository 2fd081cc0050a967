"""Issue 11.0 and issue 10.3: `-o` onto something that is not a regular file never replaces it.

A FIFO and a character device are written to as streams, a symlink is written through to its target (the link
stays), `-` and `/dev/stdout` are stdout. Each case runs for every command that takes `-o` (or `--svg`). The
device is a node made in tmp_path (never a system path), /dev/stdout is tried in a subprocess whose stdout is a
file in tmp_path.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.scenarios.faults.conftest import leftovers, looks_right, output_commands

NAMES = list(output_commands({"template": "", "templateFile": "", "key": ""}))


def _read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def reader() -> None:
        with open(path, "rb") as handle:
            into.append(handle.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("name", NAMES)
def test_a_fifo_is_written_to_not_replaced(cli, populated, tmp_path, name):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    thread = _read_fifo(fifo, got)
    args = [*output_commands(populated)[name], str(fifo)]
    if name in ("export json", "export csv", "export ics", "template export", "backup"):
        args.append("--force")  # what the trial ran: even --force must not replace it
    run = cli(*args, ok=False)
    thread.join(10)
    assert run.code == 0, run
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"
    assert got and looks_right(name, got[0]), got[:1]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", NAMES)
def test_a_character_device_is_written_as_a_stream(cli, populated, tmp_path, name):
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null node of our own
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc.strerror}); the FIFO case covers streams")
    args = [*output_commands(populated)[name], str(device)]
    if name in ("export json", "export csv", "export ics", "template export", "backup"):
        args.append("--force")
    run = cli(*args, ok=False)
    assert run.code == 0, run
    assert stat.S_ISCHR(os.lstat(device).st_mode), "the device was replaced by a regular file"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", NAMES)
def test_a_symlink_is_written_through_and_stays_a_link(cli, populated, tmp_path, name):
    real = tmp_path / "real" / "out.bin"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    args = [*output_commands(populated)[name], str(link)]
    if name in ("export json", "export csv", "export ics", "template export", "backup"):
        refused = cli(*args, ok=False)
        assert refused.code == 65 and "already exists" in refused.stderr, refused
        assert real.read_bytes() == b"old"
        args.append("--force")
    cli(*args)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert looks_right(name, real.read_bytes())
    assert leftovers(tmp_path) == [] and leftovers(real.parent) == []


@pytest.mark.parametrize("name", NAMES)
def test_a_dangling_symlink_creates_its_target(cli, populated, tmp_path, name):
    real = tmp_path / "real.bin"
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    cli(*output_commands(populated)[name], str(link))
    assert link.is_symlink() and looks_right(name, real.read_bytes())


@pytest.mark.parametrize("name", NAMES)
def test_dash_is_stdout(cli, populated, tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a file named "-" would land here, not in the repository
    before = sorted(p.name for p in Path.cwd().iterdir())
    run = cli(*output_commands(populated)[name], "-")
    assert looks_right(name, run.result.stdout_bytes), run
    assert sorted(p.name for p in Path.cwd().iterdir()) == before  # no file named "-"
    assert not Path("-").exists()


@pytest.mark.parametrize("name", NAMES)
def test_dev_stdout_is_stdout_in_a_real_process(populated, tmp_path, name):
    out = tmp_path / "captured.out"
    with open(out, "wb") as handle:
        proc = subprocess.run([sys.executable, "-m", "practiceplan", *output_commands(populated)[name], "/dev/stdout"],
                              stdout=handle, stderr=subprocess.PIPE, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert looks_right(name, out.read_bytes())
    assert out.is_file() and not out.is_symlink()


def test_json_and_a_binary_stream_on_stdout_are_refused(cli, populated):
    run = cli("backup", "-o", "-", "--json", ok=False)
    assert run.code == 2 and "both write to stdout" in run.stderr
    run = cli("template", "sign", populated["templateFile"], "--key", populated["key"], "-o", "-", "--json", ok=False)
    assert run.code == 2


@pytest.mark.parametrize("name", NAMES)
def test_a_folder_or_a_symlink_loop_is_refused(cli, populated, tmp_path, name):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for target in (tmp_path, loop):
        run = cli(*output_commands(populated)[name], str(target), ok=False)
        assert run.code == 65, run
        assert "internal error" not in run.stderr
    assert loop.is_symlink()
