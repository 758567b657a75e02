"""Builders shared by the metric tests: judgement rows and tables by hand, and picking one value."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from t2iaudit.metrics.table import JudgementTable, build_frame
from t2iaudit.types import MetricValue


def row(**fields: Any) -> dict[str, Any]:
    """One judgement-table row: every required column (``TABLE_COLUMNS``) with a default, then ``fields``."""
    base: dict[str, Any] = {
        "image_id": "img0",
        "model_id": "m",
        "prompt_id": "p1",
        "replicate": 0,
        "judge_id": "j",
        "attribute": "gender",
        "label": "unknown",
        "set_id": "s",
        "template_id": "t",
        "expected_people": 1,
        "reference": None,
    }
    return {**base, **fields}


def image_rows(
    prompt: str, labels: dict[str, list[str]], *, model: str = "m", judge: str = "j", **fields: Any
) -> list[dict[str, Any]]:
    """Rows of images ``{model}/{prompt}/{i}``: image i gets ``labels[attribute][i]`` for each attribute."""
    n = len(next(iter(labels.values())))
    return [
        row(
            image_id=f"{model}/{prompt}/{i}",
            model_id=model,
            prompt_id=prompt,
            replicate=i,
            judge_id=judge,
            attribute=attribute,
            label=values[i],
            **fields,
        )
        for i in range(n)
        for attribute, values in labels.items()
    ]


def counted_rows(prompt: str, counts: dict[str, int], **kwargs: Any) -> list[dict[str, Any]]:
    """Rows of ``counts[label]`` images per label (in order) for one attribute (default ``gender``)."""
    attribute = kwargs.pop("attribute", "gender")
    labels = [label for label, k in counts.items() for _ in range(k)]
    return image_rows(prompt, {attribute: labels}, **kwargs)


def table(
    rows: list[dict[str, Any]],
    label_sets: dict[str, dict[str, list[str]]],
    references: dict[str, dict[str, dict[str, float]]] | None = None,
    **kwargs: Any,
) -> JudgementTable:
    """A judgement table of hand-built rows."""
    return JudgementTable(pd.DataFrame(rows), label_sets, references or {}, **kwargs)


def records_table(
    judgements: list[dict[str, Any]],
    images: list[dict[str, Any]],
    prompts: list[dict[str, Any]],
    label_sets: dict[str, dict[str, list[str]]],
) -> JudgementTable:
    """A judgement table joined from run-directory records, as ``load_table`` joins them."""
    return JudgementTable(build_frame(judgements, images, prompts), label_sets)


def pick(
    values: Iterable[MetricValue],
    metric: str,
    attribute: str | None = None,
    *,
    params: dict[str, Any] | None = None,
    **scope: str | None,
) -> MetricValue:
    """The one value of ``metric`` (of ``attribute`` when given, with ``params`` among its params)
    whose scope is ``scope``: every key given has that value (None: the key is absent), and the
    scope has no other key than those and ``model_id``/``judge_id``. Fails unless exactly one."""
    hits = [
        v
        for v in values
        if v.metric == metric
        and (attribute is None or v.attribute == attribute)
        and all(v.params.get(k) == x for k, x in (params or {}).items())
        and all(v.scope.get(k) == x for k, x in scope.items())
        and set(v.scope) <= {"model_id", "judge_id", *scope}
    ]
    assert len(hits) == 1, (metric, attribute, params, scope, hits)
    return hits[0]
