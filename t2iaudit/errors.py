"""Errors for bad input: each names the file and the field (or row and column) at fault."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """Bad user input. The CLI prints ``str(error)`` and exits with status 2.

    Args:
        message: What is wrong, in words a user can act on.
        file: The file at fault, when there is one.
        field: Dotted path of the field (``models[0].steps``), or ``row 12, column gender``.
    """

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.field = field
        where = ": ".join(p for p in (self.file, self.field) if p)
        super().__init__(f"{where}: {message}" if where else message)


def pydantic_field_path(loc: tuple[object, ...], prefix: str = "") -> str:
    """``('models', 0, 'steps')`` -> ``models[0].steps``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def pydantic_message(err: Mapping[str, Any], model: type | None = None) -> str:
    """One pydantic error in a user's words.

    An extra key becomes ``unknown key 'x'``, with a did-you-mean among the keys ``model`` (the
    pydantic model validated) allows where it stands; a validator's message loses pydantic's
    ``Value error, `` prefix.
    """
    loc = tuple(err.get("loc") or ())
    if err.get("type") == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        close = difflib.get_close_matches(key, _fields_at(model, loc[:-1]), n=1)
        return f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else "")
    message = str(err.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _fields_at(model: type | None, loc: tuple[Any, ...]) -> list[str]:
    """The field names of the (nested) pydantic model at ``loc`` inside ``model``; [] if unknown."""
    from typing import get_args

    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        annotation = field.annotation if field is not None else None
        model = next((a for a in (annotation, *get_args(annotation)) if hasattr(a, "model_fields")), None)
    return list(getattr(model, "model_fields", {}))


class OutputError(InputError):
    """Output cannot be written: disk full, read-only file system, permission denied.

    Raised instead of a bare ``OSError`` by every write to a run directory (``t2iaudit.fileio``),
    after the half-written file has been removed or cut back, so nothing half-written stays. A
    subclass of ``InputError`` (the output folder is the user's choice), so every shell reports it
    as one line; the CLI exits with status 74 (``EX_IOERR``) rather than 2. Fix the cause and run
    the same command again: the run resumes.
    """
