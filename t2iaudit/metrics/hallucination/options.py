"""The hallucination family's options, and the cells its metrics are reported for.

Cells are ``(judge_id, model_id)`` and, where ``per_prompt`` is on, ``(judge_id, model_id,
prompt_id)``; ``judge_id`` is part of the scope so two judges of the same attribute never mix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

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


def iter_cells(frame: pd.DataFrame, per_prompt: bool) -> Iterable[tuple[dict[str, str], pd.DataFrame, bool]]:
    """Yield ``(scope, rows, is_model_level)`` for each judge x model (x prompt) cell."""
    for (judge, model), rows in frame.groupby(["judge_id", "model_id"], sort=True):
        yield {"judge_id": str(judge), "model_id": str(model)}, rows, True
        if per_prompt:
            for prompt, sub in rows.groupby("prompt_id", sort=True):
                yield {"judge_id": str(judge), "model_id": str(model), "prompt_id": str(prompt)}, sub, False
