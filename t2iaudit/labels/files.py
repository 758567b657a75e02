"""Read tabular label files (CSV, TSV or JSONL) into rows, with errors naming file, row, column."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2iaudit.errors import InputError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class Row:
    """One data row: where it is (``row 3`` in a CSV, header = row 1; ``line 3`` in JSONL)."""

    where: str
    values: dict[str, Any]


def read_rows(file: str | Path, required: tuple[str, ...] = ()) -> tuple[list[str], list[Row], bool]:
    """Read ``file`` as JSONL (by suffix, or a first character ``{``) or CSV/TSV.

    Returns:
        ``(columns, rows, from_csv)``; CSV values are stripped strings (missing cells None),
        JSONL values keep their JSON types.

    Raises:
        InputError: Missing or empty file, bytes that are not UTF-8, a duplicate or unnamed
            column, a missing required column, a malformed line, or no data row.
    """
    file = Path(file)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", file=file) from None
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", file=file) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"not UTF-8 text (undecodable byte at offset {e.start})",
            file=file,
            field=_where_undecodable(data, e.start, file),
        ) from None
    if not text.strip():
        raise InputError("empty file", file=file)
    is_jsonl = file.suffix.lower() in JSONL_SUFFIXES or (
        file.suffix.lower() not in (".csv", ".tsv", ".txt") and text.lstrip().startswith("{")
    )
    columns, rows = _jsonl(text, file) if is_jsonl else _csv(text, file)
    for column in required:
        if column not in columns:
            raise InputError(
                f"missing required column {column!r} (columns: {', '.join(columns)})",
                file=file,
                field=f"column {column}",
            )
    if not rows:
        raise InputError("no data rows", file=file)
    return columns, rows, not is_jsonl


def _csv(text: str, file: Path) -> tuple[list[str], list[Row]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if file.suffix.lower() == ".tsv" else ",")
    try:
        header = [h.strip() for h in next(reader)]
        for i, name in enumerate(header, start=1):
            if not name:
                raise InputError(f"column {i} of the header has no name", file=file, field="row 1")
            if name in header[: i - 1]:
                raise InputError(f"duplicate column {name!r}", file=file, field=f"row 1, column {name}")
        rows = []
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise InputError(
                    f"{len(cells)} cells but the header has {len(header)} columns", file=file, field=f"row {number}"
                )
            values = {h: (cells[i].strip() if i < len(cells) else None) for i, h in enumerate(header)}
            rows.append(Row(f"row {number}", values))
    except csv.Error as e:
        raise InputError(f"malformed CSV ({e})", file=file, field=f"row {reader.line_num}") from None
    return header, rows


def _jsonl(text: str, file: Path) -> tuple[list[str], list[Row]]:
    columns: dict[str, None] = {}
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"not valid JSON ({e.msg}, column {e.colno})", file=file, field=f"line {number}") from None
        if not isinstance(obj, dict):
            raise InputError("expected a JSON object per line", file=file, field=f"line {number}")
        for key, value in obj.items():
            if isinstance(value, (dict, list)):
                raise InputError("nested values are not supported", file=file, field=f"line {number}, column {key}")
            columns.setdefault(str(key).strip())
        rows.append(Row(f"line {number}", {str(k).strip(): v for k, v in obj.items()}))
    return list(columns), rows


def _where_undecodable(data: bytes, offset: int, file: Path) -> str:
    """``row R, column C`` of a CSV/TSV byte offset (the header is row 1); ``line N`` for JSONL."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    row = data[:offset].count(b"\n") + 1
    if file.suffix.lower() in JSONL_SUFFIXES:
        return f"line {row}"
    header = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    sep = "\t" if file.suffix.lower() == ".tsv" else ","
    names = [h.strip() for h in header.split(sep)]
    index = data[line_start:offset].count(sep.encode())  # cells before the bad byte (quotes aside)
    column = names[index] if row > 1 and index < len(names) else f"#{index + 1}"
    return f"row {row}, column {column}"
