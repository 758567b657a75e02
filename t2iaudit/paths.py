"""Paths written inside users' data files (replay mappings, calibration CSVs, label files).

A path in such a file is relative to a folder (the replay ``folder``, the CSV's own folder) and
must stay inside it: an absolute path, a ``..`` that climbs out, or a symbolic link pointing
elsewhere is refused with an ``InputError`` naming the file, row and column. So a mapping or a
label file received from someone else cannot make an audit read (and copy into a run directory
or a report) files such as ``/etc/passwd`` or ``~/.ssh/id_rsa``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from t2iaudit.errors import InputError


def inside(folder: str | Path, value: str, *, file: str | Path, field: str) -> Path:
    """The file ``value`` names, relative to ``folder``, resolved (symbolic links followed).

    Args:
        folder: The folder the path is relative to.
        value: The path as written in the data file.
        file: The data file (for the error).
        field: Where in it, e.g. ``row 3, column file``.

    Raises:
        InputError: ``value`` is empty or absolute, or leads outside ``folder``.
    """
    text = value.strip()
    if not text:
        raise InputError("empty path", file=file, field=field)
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or text.startswith("~"):
        raise InputError(f"{text!r} is an absolute path; give a path relative to {folder}", file=file, field=field)
    root = Path(folder).resolve()
    target = (root / text).resolve()
    if not target.is_relative_to(root):
        how = "" if ".." in Path(text).parts else "through a symbolic link "
        raise InputError(f"{text!r} leads {how}outside {folder}; keep the files inside it", file=file, field=field)
    return target
