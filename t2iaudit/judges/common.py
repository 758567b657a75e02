"""Helpers shared by the model-backed judge kinds (clip, mllm, caption): model references,
weight revisions, dtypes, abstention and reading values out of a prompt."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.judges.base import JudgeContext
from t2iaudit.models import fingerprint as folder_fingerprint
from t2iaudit.models import is_local as is_local_path
from t2iaudit.models import resolve_reference
from t2iaudit.types import UNKNOWN, Prompt

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
"""A full git commit hash: the only hub revision that pins weights."""

DType = Literal["auto", "float32", "float16", "bfloat16"]


class Abstention(BaseModel):
    """When a probability vector is not confident enough to give a label (answer ``unknown``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_prob: float = Field(0.0, ge=0.0, le=1.0)
    """Answer ``unknown`` when the top probability is below this."""
    min_margin: float = Field(0.0, ge=0.0, le=1.0)
    """Answer ``unknown`` when top-1 minus top-2 probability is below this."""


def decide(probs: dict[str, float], rule: Abstention) -> str:
    """Argmax label of ``probs``, or ``unknown`` when ``rule`` says it is not confident enough.

    Ties go to the first label in declaration order (dicts keep it), so results are stable.
    """
    if not probs:
        return UNKNOWN
    ranked = sorted(probs.values(), reverse=True)
    top = max(probs, key=lambda k: probs[k])
    margin = ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)
    if ranked[0] < rule.min_prob or margin < rule.min_margin:
        return UNKNOWN
    return top


def resolve_model(ref: str, context: JudgeContext) -> str:
    """``tiny:<name>`` becomes its folder in the tiny-model cache; anything else is unchanged."""
    return resolve_reference(ref, context.model_cache)


def hf_revision(ref: str, path: str, revision: str | None, loaded: Any) -> str:
    """What weights a transformers model came from: ``<id>@<commit>`` or a folder fingerprint."""
    if is_local_path(path):
        return f"{ref}@{folder_fingerprint(path)}"
    commit = getattr(getattr(loaded, "config", None), "_commit_hash", None) or revision
    return f"{ref}@{commit or 'unpinned'}"


def torch_dtype(name: DType, device: str) -> Any:
    """``auto`` is bfloat16 on CUDA and float32 elsewhere (CPU half precision is slow)."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


def hf_load_kwargs(revision: str | None, trust_remote_code: bool, path: str) -> dict[str, Any]:
    """Keyword arguments every transformers ``from_pretrained`` call of a judge gets."""
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision and not is_local_path(path):
        kwargs["revision"] = revision
    return kwargs


def load_processor(path: str, kwargs: dict[str, Any]) -> Any:
    """``AutoProcessor`` whose image side is pinned to the PIL backend.

    PIL keeps preprocessing identical on hosts with and without torchvision. Processors with a
    video processor (Qwen2-VL, LLaVA-OneVision, ...) have no PIL video backend, so there only
    the image processor is swapped for its PIL version.
    """
    from transformers import AutoImageProcessor, AutoProcessor

    try:
        return AutoProcessor.from_pretrained(path, backend="pil", **kwargs)
    except ImportError:
        processor = AutoProcessor.from_pretrained(path, **kwargs)
        if getattr(processor, "image_processor", None) is not None:
            processor.image_processor = AutoImageProcessor.from_pretrained(path, backend="pil", **kwargs)
        return processor


def prompt_field(prompt: Prompt, sources: list[str]) -> str | None:
    """First non-empty value among ``sources``: ``text``, ``slot:<name>``, ``meta:<name>``,
    ``requested:<name>``; None when none has one."""
    for source in sources:
        kind, _, name = source.partition(":")
        if kind == "text":
            value: Any = prompt.text
        elif kind == "slot":
            value = prompt.slots.get(name)
        elif kind == "meta":
            value = prompt.meta.get(name)
        elif kind == "requested":
            value = prompt.requested.get(name)
        else:
            raise ValueError(f"unknown prompt field source {source!r}")
        if value not in (None, ""):
            return str(value)
    return None


PROMPT_SOURCE_PATTERN = r"^(text|(slot|meta|requested):[A-Za-z0-9_.-]+)$"
"""Allowed prompt field sources (see ``prompt_field``)."""
