"""Files every layer writes: atomic replacement, so a reader or a crash never leaves half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write data (bytes) to path through a temp file, fsync and rename; raises OSError.

    Readers see the old file or the new one, never half of one, even after a crash or SIGKILL.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


def make_private_dir(path: Path) -> Path:
    """Create path and its missing parents readable by the owner only (0700); returns path.

    Folders that already exist keep their mode: the operator may have chosen it. Raises OSError.
    """
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue        # another process made it first
        os.chmod(folder, PRIVATE_DIR)       # mkdir's mode is masked by the umask
    return path


def open_private(path: Path, mode: str = "w", **kwargs: object):  # noqa: ANN201 - a text or binary file
    """Open path for writing as open() does, creating or truncating it with mode 0600; raises OSError.

    An existing file is made 0600 too: subscriber data must not stay readable by others because an
    older file was.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise
