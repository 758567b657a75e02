"""What a judge is: a batched labeller of images, built from a YAML judge definition."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from t2iaudit.types import Judgement, Prompt
from t2iaudit.vocabulary import AttributeInfo, LabelMapping, Role, canonical_labels, resolve_attributes

if TYPE_CHECKING:
    from PIL import Image


class LabelMap(BaseModel):
    """How one judge attribute's labels map onto a canonical attribute (YAML ``maps_to``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str | None = None
    """The canonical attribute (default: the judge attribute's own name, e.g. ``race``)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Judge label -> canonical label, e.g. ``{Indian: South Asian}``. A judge label equal to a
    canonical label maps to itself without being listed."""
    exclude: list[str] = Field(default_factory=list)
    """Judge labels with no counterpart: counted as excluded and reported, never ``unknown``."""


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
    roles: dict[str, Role] = Field(default_factory=dict)
    """Role of an attribute whose name is not in the vocabulary (``protected``, ``gate``,
    ``check``, ``count``, ``caption``); vocabulary attributes have theirs (docs/labels.md)."""
    maps_to: dict[str, LabelMap] = Field(default_factory=dict)
    """Attribute -> mapping of its labels onto a canonical attribute, required where a judge's
    labels differ from the canonical set (``race: {labels: {Indian: South Asian}}``)."""

    def judge_id(self) -> str:
        """``<id>@<version>#<hash>``: the hash covers the whole config, so any change shows."""
        data = self.model_dump(mode="json")
        for key in ("roles", "maps_to"):  # unset, they leave the ids of older judges unchanged
            if not data[key]:
                del data[key]
        blob = json.dumps(data, sort_keys=True).encode()
        return f"{self.id}@{self.version}#{hashlib.sha256(blob).hexdigest()[:8]}"

    def declared_labels(self) -> dict[str, list[str]]:
        """Attribute -> declared labels (without ``unknown``; [] for free text), from the YAML alone."""
        raise NotImplementedError

    def attribute_info(self) -> AttributeInfo:
        """Each attribute's role and each label mapping (explicit ``maps_to`` or a scheme's)."""
        declared = self.declared_labels()
        maps = {}
        for attribute, m in self.maps_to.items():
            suffix = "." + attribute.split(".", 1)[1] if "." in attribute else ""
            to = m.to or attribute
            to = to if "." in to or not suffix else to + suffix
            labels = dict(m.labels)
            canonical = canonical_labels(to) or ()
            for label in declared.get(attribute, []):  # canonical names map to themselves
                if label in canonical and label not in labels and label not in m.exclude:
                    labels[label] = label
            maps[attribute] = LabelMapping(attribute, to, labels, tuple(m.exclude))
        return resolve_attributes(declared, self.roles, maps)

    def runs_on(self) -> Literal["accelerator", "cpu", "api"]:
        """What judging occupies: a local accelerator (default), the CPU only, or a remote API
        (the flows cap accelerator work per machine and retry API work with backoff)."""
        return "accelerator"

    def check_kind(self) -> None:
        """A kind's own checks across fields (raise ValueError); run before the vocabulary's."""

    @model_validator(mode="after")
    def _consistent(self) -> JudgeConfig:
        self.check_kind()
        if type(self).declared_labels is not JudgeConfig.declared_labels:
            self.attribute_info()  # ValueError (-> the file and field) on labels, roles, maps_to
        return self


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


class JudgeFactory(Protocol):
    """Builds a judge (loads its model) from a validated config; heavy imports happen inside."""

    def __call__(self, config: Any, context: JudgeContext) -> Judge: ...


@dataclass(frozen=True)
class JudgeKind:
    """A registered judge kind: its config model and a factory building the judge."""

    config_model: type[JudgeConfig]
    build: JudgeFactory
