"""Where the shipped YAML lives: the repository checkout, or the installed package data."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPO = _PACKAGE.parent


def builtin_dir(kind: str) -> Path:
    """Folder of shipped ``prompts``, ``judges`` or ``audits`` YAML, or debias ``profiles`` JSON.

    A source checkout (editable install) reads the top-level folders; a wheel carries copies
    under ``t2iaudit/_shipped/<kind>``.
    """
    if kind not in ("prompts", "judges", "audits", "profiles"):
        raise ValueError(f"no shipped folder {kind!r}")
    for candidate in (_REPO / kind, _PACKAGE / "_shipped" / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"shipped {kind}/ folder not found next to {_PACKAGE}")
