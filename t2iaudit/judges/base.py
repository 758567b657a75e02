"""What a judge is: a batched labeller of images, built from a YAML judge definition."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.registry import Registry
from t2iaudit.types import Judgement, Prompt


class JudgeConfig(BaseModel):
    """Fields every judge YAML has; each kind subclasses this with its own fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    """Short name, e.g. ``face-age-gender``."""
    version: str = "1"
    """Bump when labels, templates, thresholds or questions change meaning."""
    kind: str
    """Registered judge kind: ``face``, ``clip``, ``mllm``, ``caption``."""
    description: str = ""

    def judge_id(self) -> str:
        """``<id>@<version>#<hash>``: the hash covers the whole config, so any change shows."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return f"{self.id}@{self.version}#{hashlib.sha256(blob).hexdigest()[:8]}"


@dataclass(frozen=True)
class JudgeInput:
    """One decoded image and the prompt it was made for."""

    image_id: str
    image: Image.Image
    """Decoded RGB image, shared by every judge of a stage."""
    prompt: Prompt


@dataclass(frozen=True)
class JudgeContext:
    """Where and how judges run."""

    device: str = "cpu"
    """``cpu``, ``cuda``, ``cuda:1`` ... (``auto`` is resolved before this is built)."""
    model_cache: Path | None = None
    """Folder for ``tiny:`` models made on first use (see ``t2iaudit.tiny``)."""
    extra: dict[str, Any] = field(default_factory=dict)


class Judge(Protocol):
    """A judge labels batches of images for its declared attributes; it may answer ``unknown``."""

    judge_id: str
    attributes: dict[str, list[str]]
    """Declared labels per attribute, without ``unknown``. Free-text attributes map to []."""
    revision: str
    """What weights the judge runs on (hub revision, file hash, package version)."""

    def judge(self, items: list[JudgeInput]) -> list[Judgement]:
        """Label every item for every attribute: ``len(items) * len(attributes)`` judgements."""
        ...


@dataclass(frozen=True)
class JudgeKind:
    """A registered judge kind: its config model and a factory building the judge."""

    config_model: type[JudgeConfig]
    build: Any
    """``build(config, context) -> Judge``; heavy imports happen inside."""


JUDGE_KINDS: Registry[JudgeKind] = Registry("judge kind")
