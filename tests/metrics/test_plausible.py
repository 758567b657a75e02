"""The bias-aware intervals summarise their draws a block at a time: the values do not depend on it."""

from __future__ import annotations

import numpy as np
import pytest

from t2iaudit.metrics.compute import MetricsOptions
from t2iaudit.metrics.distribution import plausible
from t2iaudit.metrics.distribution.family import group_values
from t2iaudit.metrics.table import LabelCounts


@pytest.mark.parametrize("total", [1, 2, 3, 7, 10, 11, 64])
@pytest.mark.parametrize("size", [1, 2, 3, 5, 100])
def test_blocks_cover_every_item_once_and_none_is_too_small(total: int, size: int) -> None:
    parts = plausible.blocks(total, size, least=2)
    assert [i for part in parts for i in range(part.start, part.stop)] == list(range(total))
    assert all(part.stop - part.start >= 2 for part in parts) or total < 2


@pytest.mark.parametrize("estimand", ["audited_prompts", "prompt_population"])
def test_values_are_the_same_in_one_block_or_many(estimand: str, monkeypatch) -> None:
    rng = np.random.default_rng(5)
    prompts = 23
    theta = rng.dirichlet(np.ones(4), prompts)
    counts = rng.multinomial(rng.integers(0, 12, prompts), theta)  # some prompts with no image
    group = LabelCounts("m", "j", "age", ["young", "middle-aged", "older"], [f"p{j}" for j in range(prompts)], counts)
    options = MetricsOptions(
        bootstrap_resamples=150,
        estimand=estimand,
        references=["uniform", "table"],
        custom_references={"table": {"age": {"young": 0.5, "middle-aged": 0.3, "older": 0.2}}},
    )

    def run(rows: int) -> list[str]:
        monkeypatch.setattr(plausible, "EVALUATE_ROWS", rows)
        return [v.model_dump_json() for v in group_values(group, options)]

    whole = run(10**9)
    assert any('"ci_low":' in v and '"ci_low":null' not in v for v in whole)
    assert run(64) == whole  # blocks of 2-3 prompts (draws) and of 2 resamples (noise)
    assert (
        run(100 * 11) == whole
    )  # one prompt a block is asked for: 2 (a one-column mean adds pairwise)  # blocks of 2-3 prompts (draws) and of 2 resamples (noise)
