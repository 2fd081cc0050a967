"""The one atomic file writer: a temp file in the same folder, every byte written and fsynced, put in place,
and the folder fsynced, so the target is either the old file or the whole new one, never a part.

* :func:`write_atomic` writes bytes (exports, template files, config, keys, backup manifests).
* :func:`place` puts a finished temp file that someone else wrote (SQLite's backup API) in place the same way.

An existing file is replaced only when asked (``replace=True``); otherwise the new name is a hard link,
which fails instead of overwriting (on file systems without hard links, an existence check guards the
rename).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from practiceplan.errors import InvalidInputError, NotFoundError


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
      and the OSError itself otherwise (a full disk, no permission);
    * with ``as_input_error`` (a file the user named), InvalidInputError ``cannot write PATH: <reason>``
      with ``hint``, whatever the reason.
    """
    path = Path(path)
    try:
        _write_new(path, data, mode, replace, temp_suffix)
    except FileExistsError:
        raise exists_error(path) from None
    except OSError as exc:
        if as_input_error:
            raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}", hint=hint) from None
        if isinstance(exc, IsADirectoryError):
            raise InvalidInputError(f"{path} is a folder", hint="give a file name") from None
        if isinstance(exc, FileNotFoundError):
            raise NotFoundError(f"the folder {path.parent} does not exist") from None
        raise
    return path
