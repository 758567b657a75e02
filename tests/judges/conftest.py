"""Fixtures and builders shared by the judge tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2iaudit.judges.base import JudgeContext, JudgeInput
from t2iaudit.types import Prompt


@pytest.fixture(scope="session")
def context(tiny_cache: Path) -> JudgeContext:
    """The session's shared tiny-model cache (tests/conftest.py): each tiny model is built once."""
    return JudgeContext(device="cpu", model_cache=tiny_cache)


def judge_inputs(
    n: int,
    *,
    seed: int = 0,
    size: tuple[int, int] = (40, 56),
    grow: int = 1,
    texts: tuple[str, ...] = ("a photo of a nurse", "a photo of a doctor"),
    prompt_ids: str = "p{k}",
    slots: dict[str, str] | None = None,
) -> list[JudgeInput]:
    """``n`` noise images of growing height (``size[0] + grow * i``) with prompts cycling ``texts``.

    ``prompt_ids`` formats with ``k`` (index into texts) and ``i`` (image); ``slots`` go on the
    prompts of even images.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = i % len(texts)
        image = Image.fromarray(rng.integers(0, 255, (size[0] + grow * i, size[1], 3), dtype=np.uint8))
        prompt = Prompt(
            prompt_id=prompt_ids.format(k=k, i=i),
            set_id="s",
            template_id="t",
            text=texts[k].format(i=i),
            slots=(slots or {}) if i % 2 == 0 else {},
        )
        out.append(JudgeInput(image_id=f"img{i}", image=image, prompt=prompt))
    return out
