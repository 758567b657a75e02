"""What BIGbench's scores read besides the labels: prompt weights, requests, references, pairs.

Luo et al., "BIGbench" (arXiv:2407.15240): prompt weights come from ``weight.json`` (prompt
metadata ``weight``), contrast pairs from ``eta.json`` (``prompts/references/bigbench_eta.json``).
A prompt without a weight is weighted 1 and listed in ``params.weights_missing`` (never silently).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from t2iaudit.vocabulary import EXCLUDED

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import JudgementTable


def missing_weights(prompt_ids: list[str]) -> dict[str, Any]:
    """``weights_missing``: prompts without a weight, weighted 1 (never silently)."""
    return {"weights_missing": sorted(prompt_ids)} if prompt_ids else {}


def excluded_images(
    table: JudgementTable, model: str, judge: str, labels: dict[str, list[str]], prompts: set[str]
) -> pd.DataFrame:
    """Images of one model and judge that a label mapping excluded, as rows labelled ``EXCLUDED``."""
    ex = table.excluded
    if ex.empty:
        return ex
    sel = (ex["model_id"] == model) & (ex["judge_id"] == judge) & ex["attribute"].isin(list(labels))
    return ex[sel & ex["prompt_id"].isin(prompts)].assign(label=EXCLUDED)


def prompt_weights(meta: pd.DataFrame, prompt_ids: list[str], column: str) -> tuple[np.ndarray, list[str]]:
    """Prompt weights from ``meta[column]``, and the prompts that have none (weighted 1, listed)."""
    out, missing = [], []
    for prompt_id in prompt_ids:
        value = meta.at[prompt_id, column] if column in meta.columns else None
        try:
            w = float(value)  # type: ignore[arg-type]  # a metadata cell of any type; a bad one is caught below
        except (TypeError, ValueError):
            w = float("nan")
        if not np.isfinite(w):
            missing.append(prompt_id)
            w = 1.0
        out.append(w)
    return np.array(out, dtype=float), missing


def requested_value(meta: pd.DataFrame, prompt_id: str, attribute: str) -> str | None:
    """The value a prompt requests for ``attribute`` (column ``requested_<attribute>``), or None."""
    col = f"requested_{attribute}"
    value = meta.at[prompt_id, col] if col in meta.columns else None
    return value if isinstance(value, str) and value else None


def reference_vector(dist: dict[str, float] | None, labels: list[str]) -> np.ndarray | None:
    """A reference over ``labels``, NaN for labels it lacks (BIGbench's cosine drops such keys)."""
    if not dist:
        return None
    return np.array([dist.get(x, np.nan) for x in labels], dtype=float)


def load_pairs(options: MetricsOptions) -> list[dict[str, Any]]:
    """The contrast pairs of D7: ``options.eta_pairs`` or the shipped ``bigbench_eta.json``."""
    from t2iaudit.promptsets import reference_file

    pairs = reference_file(options.eta_pairs or "bigbench_eta").get("pairs")
    if not isinstance(pairs, list):
        from t2iaudit.errors import InputError

        raise InputError("no 'pairs' list", file=options.eta_pairs or "bigbench_eta", field="pairs")
    return pairs
