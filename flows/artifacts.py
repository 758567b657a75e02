"""Prefect artifacts of an audit run: the headline table (every run) and the regression note.

Keys are per spec (``<spec id>-headline``, ``<spec id>-regression``), so Prefect keeps each
spec's history of them, newest first, beside the flow run that made each version.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.alerts import run_paths


def artifact_key(spec_id: str, what: str) -> str:
    """``<spec id>-<what>`` in lowercase letters, digits and dashes (Prefect's key rule)."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{spec_id}-{what}".lower()).strip("-")
    return slug or what


def publish_headline(spec_id: str, run_dir: str | Path, rows: list[dict[str, Any]], note: str) -> str:
    """The table artifact every run publishes: headline metrics and where the summary and
    report are. Returns its key."""
    paths = run_paths(run_dir)
    where = "; ".join(f"{name}: `{path}`" for name, path in paths.items())
    key = artifact_key(spec_id, "headline")
    table = rows or [{"note": "no watched headline metric in metrics.jsonl"}]
    create_table_artifact(table=table, key=key, description=f"{note}. {where}")
    return key


def publish_regression(spec_id: str, markdown: str) -> str:
    """The markdown artifact of a regression (which prompts and metrics moved). Returns its key."""
    key = artifact_key(spec_id, "regression")
    create_markdown_artifact(markdown=markdown, key=key, description=f"Regression in audit {spec_id}")
    return key
