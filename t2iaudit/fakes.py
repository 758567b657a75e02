"""A fake generator and a fake judge: whole audits in seconds with no model, for tests and demos.

- Generator ``fake`` (a spec's model entry ``generator: fake``): each image is a small PNG that
  encodes, for every attribute of ``labels``, one label drawn from that label mix with the
  image's own seed, plus seeded noise (so images differ). A model whose mix is more skewed is
  a more biased model; the images are reproducible like real ones. With ``follows`` the model
  also renders what a prompt asks for: for an attribute the prompt requests (``Prompt.requested``),
  the image shows the requested label with that probability, else a draw from the mix (a simulated
  generator for the debiasing loop).
- Judge kind ``fake`` (a judge YAML ``kind: fake``): reads the encoded labels back for the
  attributes it declares; an image is ``unknown`` with probability ``unknown_rate``, decided by
  the image's bytes (so re-judging gives the same answer).

Both are registered through entry points (``pyproject.toml``: ``t2iaudit.generators`` and
``t2iaudit.judges``), exactly as another package's plugins would be.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from t2iaudit.generators.base import GeneratedImage, GenerationRequest, GeneratorKind
from t2iaudit.judges.base import JudgeConfig, JudgeContext, JudgeInput, JudgeKind
from t2iaudit.types import UNKNOWN, Judgement

if TYPE_CHECKING:
    from PIL import Image


def _code(text: str) -> tuple[int, int, int]:
    """Three bytes naming ``text`` in a pixel (never all zero: zero ends the header)."""
    digest = hashlib.sha256(text.encode()).digest()
    return digest[0] | 1, digest[1], digest[2]


class FakeGeneratorConfig(BaseModel):
    """Options of a ``generator: fake`` model entry (makes label-encoding images, no model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: dict[str, dict[str, float]] = Field(default_factory=lambda: {"gender": {"female": 0.5, "male": 0.5}})
    """Attribute -> label -> probability: the label mix the images encode."""
    size: int = Field(16, ge=8, le=256)
    batch_size: int = Field(8, ge=1)
    follows: dict[str, float] = Field(default_factory=dict)
    """Attribute -> probability that an image of a prompt requesting a label of it shows that label
    (the rest: a draw from ``labels``). Empty: prompts' requests change nothing."""

    @field_validator("follows")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [a for a, p in value.items() if not 0.0 <= p <= 1.0]
        if bad:
            raise ValueError(f"follows.{bad[0]}: a probability must be between 0 and 1")
        return value

    @field_validator("labels")
    @classmethod
    def _mixes(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for attribute, mix in value.items():
            total = sum(mix.values())
            if not mix or any(p < 0 for p in mix.values()) or abs(total - 1.0) > 1e-6:
                raise ValueError(f"labels.{attribute}: probabilities must be >= 0 and sum to 1 (sum {total:g})")
        return value


class FakeGenerator:
    """Draws each image's labels from the mix with the image's seed and writes them into pixels."""

    seeded = True

    def __init__(self, config: FakeGeneratorConfig) -> None:
        self.config = config
        self.batch_size = config.batch_size
        self.params: dict[str, Any] = {"fake": True, "labels": config.labels, "size": config.size}
        if config.follows:
            self.params["follows"] = config.follows

    def generate(self, requests: list[GenerationRequest]) -> list[GeneratedImage]:
        return [GeneratedImage(image=self._image(r.seed, r.prompt.requested)) for r in requests]

    def _image(self, seed: int, requested: dict[str, str] | None = None) -> Image.Image:
        import numpy as np  # here, not at import: a rerun of a finished audit makes no image
        from PIL import Image

        rng = np.random.default_rng(seed)
        size = self.config.size
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        header = []
        for attribute in sorted(self.config.labels):
            mix = self.config.labels[attribute]
            asked = (requested or {}).get(attribute) if attribute in self.config.follows else None
            # Only prompts that request the attribute draw the extra number, so every other image
            # stays what it was without ``follows``.
            if asked is not None and rng.random() < self.config.follows[attribute]:
                header += [_code(attribute), _code(f"{attribute}={asked}")]
                continue
            label = list(mix)[int(rng.choice(len(mix), p=np.array(list(mix.values())) / sum(mix.values())))]
            header += [_code(attribute), _code(f"{attribute}={label}")]
        header.append((0, 0, 0))
        pixels[0, : len(header)] = np.array(header, dtype=np.uint8)
        return Image.fromarray(pixels, "RGB")

    def describe(self) -> dict[str, Any]:
        return {"model": "fake", "revision": "fake-1", "device": "cpu", "dtype": "uint8"}

    def close(self) -> None:
        pass


def build_fake_generator(config: FakeGeneratorConfig, model_id: str, model_cache: Path | None) -> FakeGenerator:
    return FakeGenerator(config)


GENERATOR = GeneratorKind(FakeGeneratorConfig, build_fake_generator, runs_on="cpu")
"""The ``fake`` generator (entry point ``t2iaudit.generators: fake``)."""


class FakeJudgeConfig(JudgeConfig):
    """``kind: fake`` judge definition: reads the labels the fake generator encoded."""

    kind: Literal["fake"] = "fake"
    attributes: dict[str, list[str]]
    """Attribute -> declared labels (those the fake generator's mix uses)."""
    unknown_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Share of images answered ``unknown`` (decided by each image's bytes)."""

    def declared_labels(self) -> dict[str, list[str]]:
        return {a: list(labels) for a, labels in self.attributes.items()}

    def runs_on(self) -> Literal["accelerator", "cpu", "api"]:
        return "cpu"


class FakeJudge:
    """Decodes the header pixels of a fake image; anything else is ``unknown``."""

    revision = "fake-1"

    def __init__(self, config: FakeJudgeConfig) -> None:
        self.config = config
        self.judge_id = config.judge_id()
        self.attributes = config.declared_labels()
        self._codes: dict[str, dict[tuple[int, ...], str]] = {
            a: {_code(f"{a}={label}"): label for label in labels} for a, labels in self.attributes.items()
        }

    def judge(self, items: list[JudgeInput]) -> list[Judgement]:
        import numpy as np

        out = []
        for item in items:
            arr = np.asarray(item.image.convert("RGB"), dtype=np.uint8)
            header: dict[tuple[int, ...], tuple[int, ...]] = {}
            row = [tuple(int(x) for x in px) for px in arr[0]]
            for k in range(0, len(row) - 1, 2):
                if row[k] == (0, 0, 0):
                    break
                header[row[k]] = row[k + 1]
            digest = hashlib.sha256(arr.tobytes()).digest()
            for attribute, labels in self.attributes.items():
                u = int.from_bytes(hashlib.sha256(digest + attribute.encode()).digest()[:8], "big") / 2**64
                found = self._codes[attribute].get(header.get(_code(attribute), (0, 0, 0)))
                label = UNKNOWN if found is None or u < self.config.unknown_rate else found
                scores = {x: float(x == label) for x in labels}
                out.append(
                    Judgement(
                        image_id=item.image_id,
                        judge_id=self.judge_id,
                        attribute=attribute,
                        label=label,
                        scores=scores,
                        raw={"decoded": found},
                    )
                )
        return out


def build_fake_judge(config: FakeJudgeConfig, context: JudgeContext) -> FakeJudge:
    return FakeJudge(config)


JUDGE = JudgeKind(FakeJudgeConfig, build_fake_judge)
"""The ``fake`` judge kind (entry point ``t2iaudit.judges: fake``)."""
