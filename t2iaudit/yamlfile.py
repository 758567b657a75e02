"""Read a YAML file; every failure is an InputError naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from t2iaudit.errors import InputError


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse ``path`` (UTF-8, BOM allowed) with the safe loader.

    Args:
        path: The YAML file.
        what: What the file is, for the not-found message ("audit spec", "label map", ...).
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise InputError(f"{what} not found", file=path) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"not valid YAML: {e}", file=path) from None
