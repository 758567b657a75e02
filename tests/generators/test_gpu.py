"""Real-GPU paths (run with ``pytest -m gpu`` on a CUDA machine; skipped by default)."""

from __future__ import annotations

import numpy as np
import pytest

from t2iaudit.generators.base import GenerationRequest, derive_seed
from t2iaudit.generators.diffusers import DiffusersConfig, DiffusersGenerator
from t2iaudit.types import Prompt

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch


def _requests(n: int) -> list[GenerationRequest]:
    prompts = [
        Prompt(prompt_id=f"s/t/{i}", set_id="s", template_id="t", text=f"a photo of person {i}") for i in range(n)
    ]
    return [GenerationRequest(p, 0, derive_seed(0, "gpu", p.prompt_id, 0)) for p in prompts]


def test_fp16_on_cuda_is_the_auto_default_and_batching_keeps_images(cuda, tiny_cache):
    config = DiffusersConfig(model="tiny:sd15", steps=4, width=64, height=64, batch_size=4)
    gen = DiffusersGenerator(config, tiny_cache)
    assert gen.device == "cuda" and gen.dtype_name == "float16"
    together = gen.generate(_requests(4))
    alone = [gen.generate([r])[0] for r in _requests(4)]
    for a, b in zip(together, alone):
        diff = np.abs(np.asarray(a.image, dtype=int) - np.asarray(b.image, dtype=int))
        assert diff.max() <= 8  # fp16 kernels differ slightly by batch shape
    gen.close()
