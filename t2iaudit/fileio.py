"""Durable file writes: atomic replacement, all-or-nothing appends, clear errors, the umask.

Every file a run writes goes through ``write_atomic`` (whole files) or ``append_lines`` (JSONL
records), so a reader never sees a half-written file or a partial batch left by a failed write,
files get the mode an ordinary ``open`` gives (0666 less the umask), and an ``OSError`` (disk
full, read-only file system, no permission) becomes an ``OutputError`` naming the file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from t2iaudit.errors import OutputError

HINTS = {
    errno.ENOSPC: "no space left on the device (disk full); free space, then run the same command again to resume",
    errno.EDQUOT: "disk quota exceeded; free space, then run the same command again to resume",
    errno.EROFS: "read-only file system; choose a writable output folder",
    errno.EACCES: "permission denied; choose an output folder you can write to",
    errno.EPERM: "operation not permitted; choose an output folder you can write to",
    errno.EFBIG: "file too large for the file system",
}
"""What an errno means for the user, where it is one they can act on."""


def umask() -> int:
    """The process's umask (read without changing it for longer than one call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def describe_os_error(e: OSError) -> str:
    """``cannot write: <what to do>`` for an OSError, without a traceback or a temporary name."""
    hint = HINTS.get(e.errno or 0) or (e.strerror or type(e).__name__).lower()
    return f"cannot write: {hint}"


@contextmanager
def output_errors(path: str | Path) -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into an ``OutputError`` naming ``path``."""
    try:
        yield
    except OutputError:
        raise
    except OSError as e:
        raise OutputError(describe_os_error(e), file=path) from e


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place.

    The file gets the mode an ordinary ``open`` would give it (0666 less the umask), not the
    0600 of ``mkstemp``, so a team's workers and report servers can read what a run writes.

    Raises:
        OutputError: The file cannot be written (naming ``path``); ``path`` is unchanged and
            no temporary file is left.
    """
    with output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            try:
                os.fchmod(fd, 0o666 & ~umask())
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def append_lines(path: Path, data: bytes) -> None:
    """Append ``data`` (whole lines) to ``path`` and fsync; all or nothing.

    When the write fails part way (disk full), the file is cut back to its length before the
    append, so no partial batch of records stays behind.

    Raises:
        OutputError: The file cannot be written (naming ``path``).
    """
    with output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # the umask applies
        try:
            start = os.fstat(fd).st_size
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except BaseException:
                try:
                    os.ftruncate(fd, start)
                    os.fsync(fd)
                except OSError:
                    pass  # the original error is the one to report
                raise
        finally:
            os.close(fd)
