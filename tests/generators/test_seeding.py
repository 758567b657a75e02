"""Seeds: derived per image, so reruns give the same bytes and batch size changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from t2iaudit.generators.base import GenerationRequest, derive_seed
from t2iaudit.generators.diffusers import DiffusersConfig, DiffusersGenerator
from t2iaudit.run.store import RunStore
from t2iaudit.types import Prompt

PROMPTS = [
    Prompt(prompt_id=f"s/t/{i}", set_id="s", template_id="t", text=t)
    for i, t in enumerate(["a photo of a nurse", "a photo of a CEO", "a photo of a chef", "a photo of a pilot"])
]


def test_seed_depends_on_every_part_and_nothing_else():
    s = derive_seed(0, "m", "p", 0)
    assert s == derive_seed(0, "m", "p", 0)
    assert (
        len(
            {
                s,
                derive_seed(1, "m", "p", 0),
                derive_seed(0, "n", "p", 0),
                derive_seed(0, "m", "q", 0),
                derive_seed(0, "m", "p", 1),
            }
        )
        == 5
    )
    assert 0 <= s < 2**63


def _requests():
    return [GenerationRequest(p, 0, derive_seed(7, "tiny", p.prompt_id, 0)) for p in PROMPTS]


@pytest.fixture(scope="module")
def generator(tiny_cache):
    config = DiffusersConfig(model="tiny:sd15", device="cpu", steps=2, width=64, height=64, batch_size=4)
    return DiffusersGenerator(config, tiny_cache)


def _record_initial_noise(gen, monkeypatch):
    seen = []
    original = gen.pipe.prepare_latents

    def recording(*args, **kwargs):
        latents = original(*args, **kwargs)
        seen.extend(latents.clone())
        return latents

    monkeypatch.setattr(gen.pipe, "prepare_latents", recording)
    return seen


def test_same_spec_gives_same_image_bytes_twice(generator, tmp_path):
    a = [RunStore(tmp_path / "a").save_image(r.image)[1] for r in generator.generate(_requests())]
    b = [RunStore(tmp_path / "b").save_image(r.image)[1] for r in generator.generate(_requests())]
    assert a == b
    assert len(set(a)) == 4  # different prompts and seeds: different images


def test_batch_size_does_not_change_noise_or_images(generator, monkeypatch):
    noise = _record_initial_noise(generator, monkeypatch)
    together = generator.generate(_requests())
    noise_together = list(noise)
    noise.clear()
    alone = [generator.generate([r])[0] for r in _requests()]
    for a, b in zip(noise_together, noise):
        assert a.shape == b.shape
        assert bool((a == b).all())  # identical initial noise per image
    for x, y in zip(together, alone):
        diff = np.abs(np.asarray(x.image, dtype=int) - np.asarray(y.image, dtype=int))
        assert diff.max() <= 2  # batched kernels may differ in the last bit before uint8 rounding
