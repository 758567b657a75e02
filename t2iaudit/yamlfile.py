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
    """``UniqueKeyLoader`` on libyaml's parser when PyYAML has it (ten times faster on a large
    prompt set); the constructor and resolver are the same Python code as the safe loader's."""


def parse_yaml(text: str, file: str | Path | None = None) -> Any:
    """Parse YAML text with ``UniqueKeyLoader``; errors name ``file`` and the line and column.

    Text is parsed by libyaml first when PyYAML has it; whatever fails there (bad YAML, a
    duplicate key, a character libyaml cannot take) is parsed again by the pure Python parser,
    so every error and its message are the pure parser's.
    """
    if hasattr(yaml, "CSafeLoader"):
        try:
            return yaml.load(text, Loader=FastUniqueKeyLoader)  # a SafeLoader: no arbitrary objects
        except Exception:  # the pure parser below gives the error users see
            pass
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.reader.ReaderError as e:  # a control character: its message spans lines
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        code = f"#x{e.character:04x}" if isinstance(e.character, int) else repr(e.character)
        message = f"not valid YAML: control character {code} is not allowed"
        raise InputError(message, file=file, field=f"line {line}, column {column}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = " ".join(str(getattr(e, "problem", None) or e).split())  # one line
        raise InputError(f"not valid YAML: {problem}", file=file, field=where) from None
    except RecursionError:
        raise InputError("not valid YAML: nested too deeply", file=file) from None


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse ``path`` (UTF-8, BOM allowed) with the safe loader; duplicate keys are errors.

    Args:
        path: The YAML file.
        what: What the file is, for the not-found message ("audit spec", "label map", ...).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found", file=path) from None
    except IsADirectoryError:
        raise InputError(f"{what} is a folder, not a file", file=path) from None
    except OSError as e:
        raise InputError(f"cannot read {what} ({e.strerror})", file=path) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        where = f"line {line}, column {column}"
        raise InputError(f"not UTF-8 text (byte 0x{data[e.start]:02x})", file=path, field=where) from None
    return parse_yaml(text, path)
