"""The one atomic file writer: a temp file in the same folder, every byte written and fsynced, put in place,
and the folder fsynced, so the target is either the old file or the whole new one, never a part.

* :func:`write_atomic` writes bytes (exports, template files, config, keys, backup manifests).
* :func:`place` puts a finished temp file that someone else wrote (SQLite's backup API) in place the same way.
* :func:`write_output` writes what a command's ``-o FILE`` names (:func:`output_target` says what that is):
  ``-``, ``/dev/stdout``, ``/dev/stderr`` and ``/dev/fd/N`` are the process's own streams; a character device
  (``/dev/null``, a terminal) or a FIFO is written to as a stream, never replaced; a symlink is followed to its
  target, and a regular file (or a new name) gets the atomic replace. Anything else (a folder, a block device,
  a socket, a symlink loop) is refused.

An existing file is replaced only when asked (``replace=True``); otherwise the new name is a hard link,
which fails instead of overwriting (on file systems without hard links, an existence check guards the
rename).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from practiceplan.errors import DiskFullError, InvalidInputError, NotFoundError, storage_error

_OWN_STREAMS = {"-": 1, "/dev/stdout": 1, "/dev/stderr": 2}
_FD_PATH = re.compile(r"/(?:dev|proc/self)/fd/(\d+)")


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` may write less than asked (a full disk, a signal): loop until every byte is written."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new name in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def fsync_file(path: Path) -> None:
    """Flush a file that was written by someone else (through another descriptor) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exists_error(path: Path) -> InvalidInputError:
    return InvalidInputError(f"{path} already exists; nothing was written", hint="add --force to replace it")


def _put(tmp: Path, final: Path, replace: bool) -> None:
    """Give the finished ``tmp`` the name ``final`` (``tmp`` is gone afterwards). FileExistsError when
    ``final`` is taken and ``replace`` is false (``tmp`` then stays)."""
    if replace:
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final)  # atomic, and never overwrites
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network and FAT file systems): check, then rename
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final)) from None
        os.replace(tmp, final)
        return
    os.unlink(tmp)


def place(tmp: Path, final: Path, *, replace: bool = False) -> None:
    """Put the finished file ``tmp`` (in ``final``'s folder) at ``final`` durably: fsync it, link or rename
    it, fsync the folder. Raises FileExistsError when ``final`` is taken and ``replace`` is false; ``tmp``
    then stays, so the caller can try another name (and must remove it in the end)."""
    fsync_file(tmp)
    _put(tmp, final, replace)
    fsync_dir(final.parent)


def _write_new(path: Path, data: bytes, mode: int, replace: bool, temp_suffix: str) -> None:
    """The write itself, failing with OSErrors only; no temp file is left behind."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    if not replace and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{temp_suffix}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask must not widen or narrow what was asked
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _put(tmp, path, replace)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_atomic(
    path: Path | str,
    data: bytes,
    *,
    mode: int = 0o600,
    replace: bool = False,
    temp_suffix: str = ".tmp",
    as_input_error: bool = False,
    hint: str | None = None,
) -> Path:
    """Write ``data`` as the whole of ``path`` with permission bits ``mode``. Returns the path written.

    The temp file is ``.<name>.<pid>.<random><temp_suffix>`` beside ``path`` (hidden, so clean-ups can find
    what a killed process left). An existing ``path`` is refused (:func:`exists_error`) unless ``replace``.
    Any other failure leaves the target untouched and no temp file behind, and raises:

    * by default, InvalidInputError when ``path`` is a folder, NotFoundError when its folder does not exist,
      and the OSError itself otherwise (a full disk, no permission: the CLI's guard maps a full disk to
      exit 75 through :func:`practiceplan.errors.storage_error`);
    * with ``as_input_error`` (a file the user named), DiskFullError when the disk or the quota is full, else
      InvalidInputError ``cannot write PATH: <reason>`` with ``hint``.
    """
    path = Path(path)
    try:
        _write_new(path, data, mode, replace, temp_suffix)
    except FileExistsError:
        raise exists_error(path) from None
    except OSError as exc:
        full = storage_error(exc, path)
        if as_input_error and isinstance(full, DiskFullError):
            raise full from None
        if as_input_error:
            raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}", hint=hint) from None
        if isinstance(exc, IsADirectoryError):
            raise InvalidInputError(f"{path} is a folder", hint="give a file name") from None
        if isinstance(exc, FileNotFoundError):
            raise NotFoundError(f"the folder {path.parent} does not exist") from None
        raise
    return path


@dataclass(frozen=True)
class OutputTarget:
    """Where ``-o NAME`` writes: one of the process's own streams (``fd``), a device or FIFO written as a
    stream (``stream``), or a regular file replaced atomically (``file``, a symlink already followed)."""

    kind: str
    path: Path | None = None
    fd: int | None = None

    @property
    def is_stdout(self) -> bool:
        return self.fd == 1

    def __str__(self) -> str:
        if self.fd is not None:
            return {1: "stdout", 2: "stderr"}.get(self.fd, f"file descriptor {self.fd}")
        return str(self.path)


def output_target(name: str | Path, *, replace: bool = True) -> OutputTarget:
    """What ``-o NAME`` means (see the module docstring). Raises InvalidInputError for a folder, a block
    device, a socket or a path that cannot be looked at, and — unless ``replace`` — for a regular file that
    exists (:func:`exists_error`), so a command can refuse before it does any work."""
    text = str(name)
    if text in _OWN_STREAMS:
        return OutputTarget("fd", fd=_OWN_STREAMS[text])
    match = _FD_PATH.fullmatch(text)
    if match:
        return OutputTarget("fd", fd=int(match[1]))
    path = Path(text)
    try:
        info = os.stat(path)  # follows symlinks: what the name finally points at
    except FileNotFoundError:
        real = Path(os.path.realpath(path)) if os.path.islink(path) else path
        return OutputTarget("file", path=real)  # a new file (a dangling symlink: where it points)
    except OSError as exc:  # a symlink loop, no permission, a file used as a folder
        raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}", hint="give another file name") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInputError(f"{path} is a folder", hint="give a file name")
    if stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode):
        return OutputTarget("stream", path=path)
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInputError(f"{path} is not a regular file, a character device or a FIFO; nothing was written",
                                hint="give a file name")
    if not replace:
        raise exists_error(path)
    return OutputTarget("file", path=Path(os.path.realpath(path)))


def write_output(name: str | Path, data: bytes, *, mode: int = 0o600, replace: bool = False,
                 hint: str | None = None, as_input_error: bool = True) -> OutputTarget:
    """Write ``data`` where ``-o NAME`` points (:func:`output_target`): streams get every byte in order, a
    regular file is written with :func:`write_atomic` (refused when it exists, unless ``replace``; a missing
    folder is NotFoundError unless ``as_input_error``). Returns the target. Errors: InvalidInputError naming
    the file, DiskFullError for a full disk."""
    target = output_target(name, replace=replace)
    if target.kind == "file":
        assert target.path is not None
        try:
            write_atomic(target.path, data, mode=mode, replace=replace, as_input_error=as_input_error, hint=hint)
        except OSError as exc:  # without as_input_error: a full disk, no permission
            raise storage_error(exc, target.path) or InvalidInputError(
                f"cannot write {target.path}: {exc.strerror or exc}", hint=hint) from None
        return target
    try:
        if target.fd is not None:
            _write_own_stream(target.fd, data)
        else:
            fd = os.open(target.path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
    except BrokenPipeError:
        raise
    except OSError as exc:
        known = storage_error(exc, target)
        if isinstance(known, DiskFullError):
            raise known from None
        raise InvalidInputError(f"cannot write {target}: {exc.strerror or exc}", hint=hint) from None
    return target


def _write_own_stream(fd: int, data: bytes) -> None:
    """Write to stdout or stderr through Python's stream objects (in order with what was printed before, and
    captured where they are redirected); any other descriptor directly."""
    stream = {1: sys.stdout, 2: sys.stderr}.get(fd)
    if stream is None:
        _write_all(fd, data)
        return
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:  # bytes: CRLF stays CRLF on every platform
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode("utf-8", errors="replace"))
        stream.flush()
