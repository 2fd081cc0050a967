"""fileio: the one atomic writer (write_atomic) and the placing of a finished temp file (place)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from practiceplan import fileio
from practiceplan.errors import DiskFullError, InvalidInputError, NotFoundError


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_short_writes_still_write_every_byte(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def short_write(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(os, "write", short_write)
    data = bytes(range(256)) * 3
    fileio.write_atomic(tmp_path / "out.bin", data)
    monkeypatch.undo()
    assert (tmp_path / "out.bin").read_bytes() == data
    assert len(calls) == -(-len(data) // 7)  # it really was written 7 bytes at a time
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_a_failed_write_leaves_the_target_and_no_temp_file(tmp_path, monkeypatch, failing):
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    real = getattr(os, failing)
    seen = []

    def full_disk(fd, *args):
        seen.append(fd)
        if failing == "write":
            real(fd, bytes(args[0][:3]))  # a part is written before the disk fills up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, failing, full_disk)
    with pytest.raises(OSError) as caught:
        fileio.write_atomic(target, b"new contents", replace=True)
    monkeypatch.undo()
    assert seen and caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_a_failed_write_of_a_user_file_is_an_input_error(tmp_path, monkeypatch):
    def no_permission(fd, data):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "write", no_permission)
    with pytest.raises(InvalidInputError, match=r"cannot write .*out\.ics: Permission denied") as caught:
        fileio.write_atomic(tmp_path / "out.ics", b"x", as_input_error=True, hint="check the folder")
    monkeypatch.undo()
    assert caught.value.hint == "check the folder"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_is_said_as_such_and_leaves_nothing(tmp_path, monkeypatch, code):
    """Issue 11.1-2/11.4: a full disk (or quota) is exit 75 "the disk is full", not "cannot write" (65)."""
    target = tmp_path / "out.ics"
    target.write_bytes(b"old")

    def full_disk(fd, data):
        os.ftruncate(fd, 0)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(DiskFullError, match="the disk is full") as caught:
        fileio.write_atomic(target, b"new", replace=True, as_input_error=True)
    monkeypatch.undo()
    assert caught.value.exit_code == 75
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o077, 0o644), (0o000, 0o600), (0o022, 0o640)])
def test_the_mode_is_honoured_whatever_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = fileio.write_atomic(tmp_path / "f", b"data", mode=mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_an_existing_file_is_refused_without_replace_and_replaced_with_it(tmp_path):
    target = tmp_path / "out.txt"
    target.write_bytes(b"keep me")
    with pytest.raises(InvalidInputError, match="already exists; nothing was written"):
        fileio.write_atomic(target, b"new")
    assert target.read_bytes() == b"keep me" and leftovers(tmp_path) == []
    fileio.write_atomic(target, b"new", replace=True)
    assert target.read_bytes() == b"new" and leftovers(tmp_path) == []


def test_a_dangling_symlink_counts_as_taken(tmp_path):
    link = tmp_path / "out.txt"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InvalidInputError, match="already exists"):
        fileio.write_atomic(link, b"new")
    assert not (tmp_path / "elsewhere").exists()


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced: list[tuple[Path, bool]] = []
    target = tmp_path / "out.txt"
    monkeypatch.setattr(fileio, "fsync_dir", lambda folder: synced.append((Path(folder), target.exists())))
    fileio.write_atomic(target, b"data")
    assert synced == [(tmp_path, True)]  # once, and after the new name exists


def test_folder_errors(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        fileio.write_atomic(tmp_path / "missing" / "x", b"data")
    with pytest.raises(InvalidInputError, match="is a folder"):
        fileio.write_atomic(tmp_path, b"data", replace=True)
    with pytest.raises(InvalidInputError, match=r"cannot write .*x: No such file or directory"):
        fileio.write_atomic(tmp_path / "missing" / "x", b"data", as_input_error=True)


def test_temp_suffix_names_the_temp_file(tmp_path, monkeypatch):
    names = []
    real_fsync = os.fsync

    def spy(fd):
        names.extend(leftovers(tmp_path))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    fileio.write_atomic(tmp_path / "x.json", b"{}", temp_suffix=".backup.tmp")
    monkeypatch.undo()
    assert names and all(n.startswith(".x.json.") and n.endswith(".backup.tmp") for n in names)
    assert leftovers(tmp_path) == []


def test_place_links_a_finished_file_and_never_overwrites_unless_asked(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(fileio, "fsync_dir", synced.append)
    tmp = tmp_path / ".copy.tmp"
    tmp.write_bytes(b"one")
    fileio.place(tmp, tmp_path / "a.db")
    assert (tmp_path / "a.db").read_bytes() == b"one" and not tmp.exists() and synced == [tmp_path]
    tmp.write_bytes(b"two")
    with pytest.raises(FileExistsError):
        fileio.place(tmp, tmp_path / "a.db")
    assert tmp.read_bytes() == b"two" and (tmp_path / "a.db").read_bytes() == b"one"  # tmp stays for a retry
    fileio.place(tmp, tmp_path / "a.db", replace=True)
    assert (tmp_path / "a.db").read_bytes() == b"two" and not tmp.exists()


def test_place_without_hard_links_checks_then_renames(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "link", no_links)
    tmp = tmp_path / ".copy.tmp"
    tmp.write_bytes(b"one")
    fileio.place(tmp, tmp_path / "a.db")
    assert (tmp_path / "a.db").read_bytes() == b"one" and not tmp.exists()
    tmp.write_bytes(b"two")
    with pytest.raises(FileExistsError):
        fileio.place(tmp, tmp_path / "a.db")
    assert (tmp_path / "a.db").read_bytes() == b"one"
