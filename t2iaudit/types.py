"""Records passed between the stages of an audit (see DESIGN.md, "Records")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

UNKNOWN = "unknown"
"""The label every judge may answer: no face, low confidence, unparsable answer."""

TRANSIENT = "transient"
"""Key of a judgement's ``raw`` dict set to True when the answer is ``unknown`` only because of a
transient failure (timeout, connection error, HTTP 5xx after retries): the next run of the judge
stage asks again, and its answer supersedes this one."""


def is_transient(raw: Any) -> bool:
    """Whether a judgement's ``raw`` output marks a transient failure (see ``TRANSIENT``)."""
    return isinstance(raw, dict) and raw.get(TRANSIENT) is True


class Record(BaseModel):
    """Base for all records: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Prompt(Record):
    """One expanded prompt of a prompt set."""

    prompt_id: str
    """Stable readable id, e.g. ``occupations/photo/nurse``; the key for resume and joins."""
    set_id: str
    """Id of the prompt set this prompt came from."""
    set_version: str = "1"
    """Version of the prompt set (changes when templates or slots change)."""
    template_id: str
    """Id of the template within the set."""
    text: str
    """The prompt text sent to the generator."""
    slots: dict[str, str] = Field(default_factory=dict)
    """Slot values filled into the template, e.g. ``{"occupation": "nurse"}``."""
    requested: dict[str, str] = Field(default_factory=dict)
    """Attributes the prompt states explicitly, e.g. ``{"gender": "female"}``."""
    expected_people: int = 1
    """How many people the prompt implies (0 for objects, 2 for two-person relations)."""
    reference: str | None = None
    """Key of a reference distribution (``<table>/<key>``), or None for uniform."""
    meta: dict[str, str | float | int | bool | None] = Field(default_factory=dict)
    """Extra prompt metadata that metrics can group on (category, weight, polarity, ...)."""


class ImageRecord(Record):
    """One generated (or replayed) image, written to ``images.jsonl``."""

    image_id: str
    """Stable id ``<model_id>/<prompt_id>/<replicate>``; the resume key."""
    model_id: str
    """Id of the model entry in the audit spec."""
    prompt_id: str
    """Prompt the image was made for."""
    replicate: int
    """Index of the image among those made for the same model and prompt."""
    seed: int | None
    """Seed of the image's own ``torch.Generator`` (None for replayed images)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Generation parameters that change the pixels (steps, guidance, size, scheduler, ...)."""
    path: str
    """Path relative to the run directory, content-addressed: ``images/ab/<sha256>.png``."""
    sha256: str
    """SHA-256 of the stored image file."""
    width: int
    height: int
    batch_index: int = 0
    """Position of the image within its generation batch."""
    nsfw_flag: bool | None = None
    """Safety-checker flag when the pipeline has one; None when not checked."""


class Judgement(Record):
    """One judge's label for one attribute of one image, written to ``judgements.jsonl``."""

    image_id: str
    judge_id: str
    """``<name>@<version>#<config hash>``: changes whenever the judge's behaviour can change."""
    attribute: str
    """The attribute judged, e.g. ``gender``, ``age``, ``face_count``."""
    label: str
    """One of the judge's declared labels for the attribute, or ``unknown``."""
    scores: dict[str, float] = Field(default_factory=dict)
    """The full score vector over the declared labels (probabilities where the judge has them)."""
    raw: Any = None
    """The judge's raw output (model output, API text, caption), kept for audit."""


class MetricValue(Record):
    """One metric value for one cell, written to ``metrics.jsonl``."""

    metric: str
    """Metric name, e.g. ``share``, ``D1_mad``, ``D9_tv``."""
    attribute: str
    scope: dict[str, str] = Field(default_factory=dict)
    """The cell: model, prompt or group keys, e.g. ``{"model_id": "sd15", "prompt_id": ...}``."""
    value: float | None
    """The estimate; None when undefined (e.g. no labelled image in the cell)."""
    ci_low: float | None = None
    ci_high: float | None = None
    n: int
    """Number of labels used (unknowns excluded unless ``params.unknown_in_denominator``)."""
    n_unknown: int
    """Number of images the judge abstained on in the cell."""
    params: dict[str, Any] = Field(default_factory=dict)
    """How the value was computed: reference, interval method, resamples, seed, judge, ..."""
