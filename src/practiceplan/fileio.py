"""The one atomic file writer: a temp file in the same folder, every byte written and fsynced, renamed into
place, and the folder fsynced, so the target is either the old file or the whole new one, never a part.

An existing file is replaced only when asked (``replace=True``); otherwise the rename is a hard link, which
fails instead of overwriting (on file systems without hard links, an existence check guards the rename).
"""

from __future__ import annotations

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


def exists_error(path: Path) -> InvalidInputError:
    return InvalidInputError(f"{path} already exists; nothing was written", hint="add --force to replace it")


def write_atomic(path: Path | str, data: bytes, *, mode: int = 0o600, replace: bool = False) -> Path:
    """Write ``data`` as the whole of ``path`` with permission bits ``mode``. Returns the path written.

    Raises InvalidInputError when ``path`` is a folder or exists (without ``replace``), NotFoundError when its
    folder does not exist; an OSError while writing leaves the target untouched and no temp file behind.
    """
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder", hint="give a file name")
    if not path.parent.is_dir():
        raise NotFoundError(f"the folder {path.parent} does not exist")
    if path.exists() and not replace:
        raise exists_error(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.fchmod(fd, mode)  # the umask must not widen or narrow what was asked
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic and never overwrites
            except FileExistsError:
                raise exists_error(path) from None
            except OSError:  # no hard links here (some network and FAT file systems)
                if path.exists():
                    raise exists_error(path) from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path
