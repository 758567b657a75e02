"""Read a YAML file: the safe loader, duplicate keys refused, every failure an InputError naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from t2iaudit.errors import InputError


class _UniqueKeys:
    """Refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: list[Any] = []
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
            seen.append(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


class FastUniqueKeyLoader(_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """``UniqueKeyLoader`` on libyaml's parser when PyYAML has it (about ten times faster)."""


def parse_yaml(text: str, file: str | Path | None = None) -> Any:
    """Parse YAML text with ``UniqueKeyLoader``; errors name ``file`` and the line and column.

    Valid YAML is parsed by libyaml when PyYAML has it; invalid YAML is parsed again by the pure
    Python parser, so the error message is the same either way.
    """
    try:
        return yaml.load(text, Loader=FastUniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError:
        pass
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(e, "problem", None) or e
        raise InputError(f"not valid YAML: {problem}", file=file, field=where) from None


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse ``path`` (UTF-8, BOM allowed) with the safe loader; duplicate keys are errors.

    Args:
        path: The YAML file.
        what: What the file is, for the not-found message ("audit spec", "label map", ...).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what} not found", file=path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text: {e}", file=path) from None
    return parse_yaml(text, path)
