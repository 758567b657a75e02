"""A run's copies of its reference tables (``references/<sha256[:12]>.csv``), and reading them back."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from t2iaudit.errors import InputError
from t2iaudit.reference_tables import FOLDER, ReferenceTable, read_reference_table


def store_tables(root: Path, tables: Sequence[ReferenceTable]) -> list[dict[str, Any]]:
    """Copy the tables into ``root/references/`` (atomically) and return their manifest entries."""
    from t2iaudit.fileio import write_atomic

    entries = []
    for table in tables:
        stored = f"{FOLDER}/{table.sha256[:12]}{Path(table.file).suffix or '.csv'}"
        target = root / stored
        if not target.exists():
            write_atomic(target, Path(table.file).read_bytes())
        entries.append(table.manifest_entry(stored))
    return entries


def load_stored_tables(
    root: Path,
    entries: Sequence[Mapping[str, Any]],
    label_sets: Mapping[str, Sequence[str]],
    prompt_ids: Collection[str],
) -> list[ReferenceTable]:
    """The tables a run's manifest lists, read from the run's own copies (sha256 checked)."""
    tables = []
    for entry in entries:
        path = root / str(entry["path"])
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        if digest != entry.get("sha256"):
            raise InputError("reference table missing or changed since it was attached", file=path)
        tables.append(read_reference_table(path, prompt_ids, label_sets))
    return tables
