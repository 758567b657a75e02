"""CLIP zero-shot judge (``kind: clip``) on open_clip or transformers, plus TBYB's prompt checks.

Zero-shot labelling follows Radford et al. 2021 (CLIP) and open_clip's zero-shot classifier:
each label has several text templates whose normalised embeddings are averaged and
re-normalised (prompt ensembling); an image's label distribution is the softmax of the scaled
cosine similarities. Below the YAML's probability or margin thresholds the answer is ``unknown``.

Two per-image checks need the prompt text instead of declared labels:

- ``prompt_match``: TBYB's generative miss-rate (Vice et al. 2024, "Try Before You Bias"): CLIP's
  softmax over ``[prompt, " "]``; ``miss`` when it does not pick the prompt.
- ``clipscore``: Hessel et al. 2021, ``2.5 * max(cos(image, prompt), 0)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, field_validator

from t2iaudit.errors import InputError
from t2iaudit.judges.base import JudgeConfig, JudgeContext, JudgeInput, JudgeKind
from t2iaudit.judges.common import (
    Abstention,
    DType,
    decide,
    folder_fingerprint,
    hf_load_kwargs,
    hf_revision,
    is_local_path,
    load_processor,
    resolve_model,
    torch_dtype,
)
from t2iaudit.types import UNKNOWN, Judgement

CHECKS = {"prompt_match": ["match", "miss"], "clipscore": ["value"]}
"""Prompt-text checks the clip kind can add, with their declared labels."""


class ClipAttribute(Abstention):
    """One attribute: labels, the text each label is described by, and abstention thresholds."""

    labels: dict[str, list[str]]
    """Label -> texts describing it. With ``templates`` these are names put into each template;
    without, they are full texts (``"a photo of a woman"``). All are ensembled per label."""
    templates: list[str] = Field(default_factory=list)
    """Optional templates with one ``{}`` (``"a photo of a {} person."``)."""
    requires: dict[str, str] = Field(default_factory=dict)
    """Gate: ``{person: "yes"}`` answers ``unknown`` unless attribute ``person`` of the same judge
    got label ``yes`` (no gender label for an image without a person)."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, list[str]]) -> dict[str, list[str]]:
        if len(labels) < 2:
            raise ValueError("an attribute needs at least two labels")
        for label, texts in labels.items():
            if not label or label == UNKNOWN:
                raise ValueError(f"label {label!r} is reserved or empty (unknown is implicit)")
            if not texts or not all(t.strip() for t in texts):
                raise ValueError(f"label {label!r} needs at least one non-empty text")
        return labels

    @field_validator("templates")
    @classmethod
    def _templates(cls, templates: list[str]) -> list[str]:
        for t in templates:
            if t.count("{}") != 1:
                raise ValueError(f"template {t!r} must contain exactly one '{{}}'")
        return templates

    def texts(self) -> dict[str, list[str]]:
        """Label -> the final texts to embed."""
        if not self.templates:
            return {k: list(v) for k, v in self.labels.items()}
        return {k: [t.replace("{}", n) for n in v for t in self.templates] for k, v in self.labels.items()}


class ClipJudgeConfig(JudgeConfig):
    """``kind: clip`` judge definition."""

    kind: Literal["clip"] = "clip"
    backend: Literal["transformers", "open_clip"] = "transformers"
    """Which library loads and runs the model."""
    model: str
    """transformers: hub id, local folder or ``tiny:clip-hf``. open_clip: architecture name
    (``ViT-B-32``), ``local-dir:<folder>``, ``hf-hub:<id>`` or ``tiny:clip-openclip``."""
    pretrained: str | None = None
    """open_clip only: pretrained tag (``laion2b_s34b_b79k``, downloads once) or checkpoint file."""
    revision: str | None = None
    """transformers hub models: the commit to load (pin a 40-hex commit for audits)."""
    dtype: DType = "float32"
    """Weights dtype; ``auto`` is bfloat16 on CUDA, float32 on CPU."""
    batch_size: int = Field(32, ge=1)
    """Images per forward pass."""
    trust_remote_code: bool = False
    """transformers only; leave off unless the model needs it and you trust its code."""
    attributes: dict[str, ClipAttribute] = Field(default_factory=dict)
    """Attribute -> labels, templates, thresholds. Several attributes share one image pass."""
    checks: list[Literal["prompt_match", "clipscore"]] = Field(default_factory=list)
    """Prompt-text checks to add: TBYB generative miss-rate and CLIPScore."""
    null_text: str = " "
    """The competing text of ``prompt_match`` (TBYB uses a single space)."""

    def check_kind(self) -> None:
        """Attribute names, gates (``requires``), backend options and checks fit together."""
        if not self.attributes and not self.checks:
            raise ValueError("declare at least one attribute or check")
        for name, attr in self.attributes.items():
            if name in CHECKS:
                raise ValueError(f"attribute name {name!r} is reserved for the check of that name")
            for other, label in attr.requires.items():
                gate = self.attributes.get(other)
                if gate is None or other == name:
                    raise ValueError(f"attributes.{name}.requires: no other attribute {other!r}")
                if label not in gate.labels:
                    raise ValueError(f"attributes.{name}.requires: {other!r} has no label {label!r}")
                if gate.requires:
                    raise ValueError(f"attributes.{name}.requires: {other!r} is itself gated")
        if self.pretrained and self.backend != "open_clip":
            raise ValueError("'pretrained' is an open_clip option; transformers uses 'revision'")
        if len(set(self.checks)) != len(self.checks):
            raise ValueError("checks are listed twice")

    def declared_labels(self) -> dict[str, list[str]]:
        """Each attribute's labels, then each check's (``match``/``miss``, ``value``)."""
        out = {a: list(s.labels) for a, s in self.attributes.items()}
        out.update({c: list(CHECKS[c]) for c in self.checks})
        return out


class ClipBackend(Protocol):
    """What the judge needs from a CLIP model; both return L2-normalised embeddings."""

    revision: str
    logit_scale: float

    def encode_text(self, texts: list[str]) -> Any: ...

    def encode_images(self, images: list[Any]) -> Any: ...


def _normalise(x: Any) -> Any:
    import torch

    return torch.nn.functional.normalize(x.float(), dim=-1)


def _features(out: Any) -> Any:
    # transformers 5 get_*_features return a ModelOutput whose pooler_output is the projection.
    return out if hasattr(out, "dim") else out.pooler_output


class HFClipBackend:
    """transformers ``AutoModel`` + ``AutoProcessor`` pinned to the PIL image backend."""

    TEXT_CHUNK = 256

    def __init__(self, config: ClipJudgeConfig, context: JudgeContext) -> None:
        from transformers import AutoModel

        path = resolve_model(config.model, context)
        kwargs = hf_load_kwargs(config.revision, config.trust_remote_code, path)
        dtype = torch_dtype(config.dtype, context.device)
        self.model = AutoModel.from_pretrained(path, dtype=dtype, **kwargs).to(context.device).eval()
        # PIL backend: identical preprocessing whether or not the host has torchvision.
        self.processor = load_processor(path, kwargs)
        self.device, self.dtype = context.device, dtype
        self.logit_scale = float(self.model.logit_scale.exp().item())
        self.revision = hf_revision(config.model, path, config.revision, self.model)

    def encode_text(self, texts: list[str]) -> Any:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.TEXT_CHUNK):
                enc = self.processor.tokenizer(
                    texts[i : i + self.TEXT_CHUNK], padding=True, truncation=True, return_tensors="pt"
                ).to(self.device)
                out.append(_normalise(_features(self.model.get_text_features(**enc))))
        return torch.cat(out)

    def encode_images(self, images: list[Any]) -> Any:
        import torch

        with torch.inference_mode():
            enc = self.processor.image_processor(images=images, return_tensors="pt")
            pixels = enc["pixel_values"].to(self.device, self.dtype)
            return _normalise(_features(self.model.get_image_features(pixel_values=pixels)))


class OpenClipBackend:
    """open_clip model from a built-in name + tag/file, ``local-dir:`` folder or ``hf-hub:`` id."""

    TEXT_CHUNK = 256
    PRECISION = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}

    def __init__(self, config: ClipJudgeConfig, context: JudgeContext) -> None:
        import open_clip

        name, pretrained, revision = self._locate(config, context)
        dtype = torch_dtype(config.dtype, context.device)
        precision = self.PRECISION[str(dtype).removeprefix("torch.")]
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=pretrained, device=context.device, precision=precision, weights_only=True
        )  # weights_only: a .bin/.pt checkpoint is unpickled without running code
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(name)
        self.device, self.dtype = context.device, dtype
        self.logit_scale = float(self.model.logit_scale.exp().item())
        self.revision = revision

    @staticmethod
    def _locate(config: ClipJudgeConfig, context: JudgeContext) -> tuple[str, str | None, str]:
        """(model name for open_clip, pretrained file or None, revision string)."""
        ref = config.model
        if ref.startswith("tiny:") or (is_local_path(ref) and not ref.startswith("local-dir:")):
            ref = "local-dir:" + resolve_model(ref, context)
        if ref.startswith("local-dir:"):
            return ref, None, f"{config.model}@{folder_fingerprint(ref.removeprefix('local-dir:'))}"
        if ref.startswith("hf-hub:") or not config.pretrained:
            return ref, config.pretrained, f"{ref}@unpinned"
        pretrained = config.pretrained
        if is_local_path(pretrained):
            return ref, pretrained, f"{ref}/{Path(pretrained).name}@{folder_fingerprint(pretrained)}"
        # Fetch the tag's file ourselves (from the local cache when present) so the revision
        # can name the exact weights by content hash.
        from open_clip.pretrained import download_pretrained, get_pretrained_cfg

        cfg = get_pretrained_cfg(ref, pretrained)
        if not cfg:
            raise InputError(f"open_clip has no pretrained tag {pretrained!r} for {ref!r}", field="pretrained")
        try:
            path = download_pretrained(cfg)
        except Exception as e:  # open_clip raises several types; all mean "weights not available"
            raise InputError(
                f"cannot get open_clip weights {ref}/{pretrained} ({e}); offline, set 'pretrained' "
                "to the checkpoint file",
                field="pretrained",
            ) from None
        return ref, path, f"{ref}/{pretrained}@{folder_fingerprint(path)}"

    def encode_text(self, texts: list[str]) -> Any:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.TEXT_CHUNK):
                tokens = self.tokenizer(texts[i : i + self.TEXT_CHUNK]).to(self.device)
                out.append(_normalise(self.model.encode_text(tokens)))
        return torch.cat(out)

    def encode_images(self, images: list[Any]) -> Any:
        import torch

        with torch.inference_mode():
            pixels = torch.stack([self.preprocess(im) for im in images]).to(self.device, self.dtype)
            return _normalise(self.model.encode_image(pixels))


class ClipJudge:
    """Batched zero-shot CLIP judge; label embeddings are computed once, at construction."""

    PROMPT_CACHE_MAX = 100_000
    """Prompt-text embeddings kept for the checks (a few KB each)."""

    def __init__(self, config: ClipJudgeConfig, backend: ClipBackend) -> None:
        import torch

        self.config = config
        self.backend = backend
        self.judge_id = config.judge_id()
        self.revision = backend.revision
        self.attributes: dict[str, list[str]] = config.declared_labels()
        # One text pass for every label text of every attribute (and the TBYB null text).
        texts: list[str] = []
        spans: dict[str, list[tuple[int, int]]] = {}
        for name, spec in config.attributes.items():
            spans[name] = []
            for label_texts in spec.texts().values():
                spans[name].append((len(texts), len(texts) + len(label_texts)))
                texts.extend(label_texts)
        if "prompt_match" in config.checks:
            texts.append(config.null_text)
        emb: Any = backend.encode_text(texts) if texts else None  # a tensor when indexed below
        self._classes = {name: _normalise(torch.stack([emb[a:b].mean(0) for a, b in s])) for name, s in spans.items()}
        self._null: Any = emb[-1] if "prompt_match" in config.checks else None
        self._prompts: dict[str, Any] = {}

    def _prompt_embeddings(self, texts: list[str]) -> dict[str, Any]:
        new = sorted({t for t in texts if t and t not in self._prompts})
        if new:
            if len(self._prompts) + len(new) > self.PROMPT_CACHE_MAX:
                self._prompts.clear()
            # One text per forward pass: a batch pads to its longest text, which moves the last
            # bits of every embedding, so a cached one would depend on which prompts this judge
            # happened to meet first (a resumed run or a flow worker would disagree with a fresh one).
            self._prompts.update((t, self.backend.encode_text([t])[0]) for t in new)
        return {t: self._prompts[t] for t in texts if t}

    def judge(self, items: list[JudgeInput]) -> list[Judgement]:
        out: list[Judgement] = []
        size = self.config.batch_size
        for start in range(0, len(items), size):
            out.extend(self._judge_batch(items[start : start + size]))
        return out

    def _judge_batch(self, batch: list[JudgeInput]) -> list[Judgement]:
        images = self.backend.encode_images([item.image for item in batch])
        scale = self.backend.logit_scale
        per_attr: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
        for name, classes in self._classes.items():
            cos = images @ classes.to(images.device).T
            per_attr[name] = ((scale * cos).softmax(-1).tolist(), cos.tolist())
        prompt_emb = self._prompt_embeddings([i.prompt.text for i in batch]) if self.config.checks else {}
        rows: list[list[tuple[str, str, dict[str, float], Any]]] = []
        for i, item in enumerate(batch):
            row = []
            for name, spec in self.config.attributes.items():
                probs = dict(zip(spec.labels, per_attr[name][0][i]))
                raw: dict[str, Any] = {"cos": dict(zip(spec.labels, per_attr[name][1][i]))}
                row.append((name, decide(probs, spec), probs, raw))
            labels = {name: label for name, label, _, _ in row}
            for k, (name, _, probs, raw) in enumerate(row):
                # Gates are never gated themselves (validated), so one pass settles them.
                requires = self.config.attributes[name].requires
                closed = {g: labels[g] for g, want in requires.items() if labels[g] != want}
                if closed:
                    raw["gated_by"] = closed
                    row[k] = (name, UNKNOWN, probs, raw)
            row.extend(self._checks(images[i], prompt_emb.get(item.prompt.text)))
            rows.append(row)
        return [
            Judgement(
                image_id=item.image_id, judge_id=self.judge_id, attribute=attr, label=label, scores=scores, raw=raw
            )
            for item, row in zip(batch, rows)
            for attr, label, scores, raw in row
        ]

    def _checks(self, image: Any, prompt: Any) -> list[tuple[str, str, dict[str, float], Any]]:
        out: list[tuple[str, str, dict[str, float], Any]] = []
        for check in self.config.checks:
            if prompt is None:  # empty prompt text: nothing to compare against
                scores = {k: 0.0 for k in CHECKS[check]}
                out.append((check, UNKNOWN, scores, {"error": "empty_prompt"}))
                continue
            cos = float(image @ prompt.to(image.device))
            if check == "clipscore":
                out.append((check, "value", {"value": 2.5 * max(cos, 0.0)}, {"cos": cos}))
            else:
                null = float(image @ self._null.to(image.device))
                a, b = self.backend.logit_scale * cos, self.backend.logit_scale * null
                p = 1.0 / (1.0 + _exp(b - a))
                label = "match" if p >= 0.5 else "miss"
                out.append((check, label, {"match": p, "miss": 1.0 - p}, {"cos": cos, "cos_null": null}))
        return out


def _exp(x: float) -> float:
    import math

    return math.exp(min(x, 700.0))  # a two-way softmax; clamp so exp cannot overflow


def build_clip_judge(config: ClipJudgeConfig, context: JudgeContext) -> ClipJudge:
    """Factory registered as judge kind ``clip``: loads the model once, embeds label texts once."""
    backend: ClipBackend
    backend = OpenClipBackend(config, context) if config.backend == "open_clip" else HFClipBackend(config, context)
    return ClipJudge(config, backend)


KIND = JudgeKind(ClipJudgeConfig, build_clip_judge)
"""The ``clip`` judge kind (registered in ``t2iaudit.judges.registry``)."""
