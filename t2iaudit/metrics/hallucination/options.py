"""The hallucination family's options, and the cells its metrics are reported for.

Cells are ``(judge_id, model_id)`` and, where ``per_prompt`` is on, ``(judge_id, model_id,
prompt_id)``; ``judge_id`` is part of the scope so two judges of the same attribute never mix.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict


class HallucinationOptions(BaseModel):
    """``metrics.family_options.hallucination``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lexicon: Literal["auto", "wordnet", "shipped"] = "auto"
    """Word folding: NLTK's WordNet when its corpus is installed, else the shipped hand-written
    list (``auto``); WordNet required (``wordnet``); or the shipped list (``shipped``)."""
    per_prompt: bool = True
    """Also report every metric per (model, prompt)."""
    caption_attribute: str = "caption"
    match_attribute: str = "prompt_match"
    count_attribute: str = "person_count"
    prompt_text_columns: tuple[str, ...] = ("prompt_text", "text")
    """Table columns holding the prompt text (first present wins)."""


def cell_counts(
    rows: pd.DataFrame, counts: dict[str, np.ndarray], per_prompt: bool, single: str | None = None
) -> list[tuple[dict[str, str], dict[str, int], str | None]]:
    """Per cell, the sums of per-row 0/1 ``counts`` plus ``rows`` (the cell's rows), and the one
    value of column ``single`` when the cell has exactly one (else None).

    Cells come sorted: each judge x model, then (with ``per_prompt``) its prompts. One groupby
    for all cells instead of a frame slice per cell.
    """
    keys = ["judge_id", "model_id", "prompt_id"]
    frame = rows[keys].assign(rows=1, **{k: np.asarray(v, dtype=np.int64) for k, v in counts.items()})
    if single is not None:
        frame["_single"] = rows[single].astype(object).where(rows[single].notna(), None).map(_text)
    names = ["rows", *counts]
    out: list[tuple[dict[str, str], dict[str, int], str | None]] = []
    for (judge, model), cell in frame.groupby(keys[:2], sort=True):
        scope = {"judge_id": str(judge), "model_id": str(model)}
        out.append((scope, {k: int(v) for k, v in cell[names].sum().items()}, _one(cell, single)))
        if per_prompt:
            sums = cell.groupby("prompt_id", sort=True)[names].sum()
            ones = cell.groupby("prompt_id", sort=True)["_single"].agg(_only) if single else None
            for prompt, row in zip(sums.index, sums.to_numpy().tolist()):
                value = ones[prompt] if ones is not None else None
                out.append(({**scope, "prompt_id": str(prompt)}, dict(zip(names, map(int, row))), value))
    return out


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _only(values: pd.Series) -> str | None:
    found = values.dropna().unique()
    return str(found[0]) if len(found) == 1 else None


def _one(cell: pd.DataFrame, single: str | None) -> str | None:
    return _only(cell["_single"]) if single is not None else None
