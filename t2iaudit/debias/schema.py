"""Request and response records of the debias planner, shared by the library, the CLI and the HTTP service."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.debias.analysis import AbstainCode, Analysis, SubjectMode
from t2iaudit.debias.attribute_target import MAX_N, NAME_PATTERN, AttributeTarget, ClassName, Share

MAX_PROMPT_CHARS = 1000
"""Longest prompt accepted."""
MAX_BATCH = 64
"""Most prompts in one batch request."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JointCell(_Model):
    """One cell of a joint table over several attributes."""

    classes: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ClassName] = Field(min_length=2, max_length=8)
    """One class per attribute of the table."""
    share: Share
    """The cell's share (the cells' shares sum to 1)."""


class PlanRequest(_Model):
    """One prompt to plan ``n`` debiased variants of."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prompt": "a photo of a nurse",
                    "n": 12,
                    "seed": 7,
                    "attributes": {"gender": {"classes": ["female", "male"], "target": [0.5, 0.5]}},
                }
            ]
        }
    )

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    """The user's prompt."""
    n: int = Field(ge=1, le=MAX_N)
    """Number of prompts (images) to plan."""
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    """Seed of the plan's shuffles and of the image seeds."""
    attributes: dict[Annotated[str, Field(pattern=NAME_PATTERN)], AttributeTarget] = Field(min_length=1, max_length=8)
    """Attribute -> wanted distribution."""
    joint: list[JointCell] | None = Field(default=None, min_length=1, max_length=256)
    """A joint table over some of the attributes (each must be in ``attributes``), planned as one."""
    profile: str | None = Field(default=None, pattern=NAME_PATTERN)
    """Realisation profile whose solved request proportions replace the targets it covers."""
    subjects: SubjectMode = "each"
    """``each``: every human subject gets its own assignment; ``first``: only the first (warning)."""
    similarity_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Minimum cosine to the original (default: the server's setting)."""


class BatchRequest(_Model):
    """Several plan requests answered together."""

    requests: list[PlanRequest] = Field(min_length=1, max_length=MAX_BATCH)


class InsertCheck(_Model):
    """The structural rule: only planned attribute words, inserted next to a subject noun."""

    ok: bool
    inserted: list[str]
    violations: list[str]


class NamesCheck(_Model):
    """The rewrite names exactly the planned attributes (plus what the prompt stated)."""

    ok: bool
    expected: dict[str, dict[str, str]]
    """Per subject (1-based), the attributes the rewrite should state."""
    found: dict[str, dict[str, str]]
    """Per subject, the attributes the rule analyser finds stated in the rewrite."""


class SimilarityCheck(_Model):
    """Sentence-embedding cosine of the rewrite to the original (all-MiniLM-L6-v2)."""

    ok: bool
    cosine: float
    """Cosine between the original and the rewritten prompt."""
    masked_cosine: float
    """Cosine with the inserted attribute words masked out (METRICS.md, text preservation)."""
    threshold: float


class Checks(_Model):
    """Every check of one rewrite."""

    ok: bool
    """True when every check below passed."""
    insert_only: InsertCheck
    names_planned: NamesCheck
    similarity: SimilarityCheck | None
    """None when the server runs without a sentence embedder."""
    rewriter: str
    """The rewriter whose text was kept (``template`` or ``lm:<model>``)."""
    replaced: bool = False
    """True when an LM rewrite failed the checks and the template rewrite replaced it."""
    rejected: str | None = None
    """The LM rewrite that was replaced."""
    rejected_violations: list[str] = Field(default_factory=list)


class PlanItem(_Model):
    """One planned prompt."""

    index: int
    prompt: str
    """The prompt to send to the generator."""
    assignment: dict[str, str]
    """Slot -> class: ``gender`` for one subject, ``gender.2`` for the second of several."""
    image_seed: int
    """The seed to generate this item's image with (derived from the seed, the prompt and the index)."""
    checks: Checks | None
    """None when the prompt was left unchanged."""


class PlanWarning(_Model):
    """A warning the caller should read."""

    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class PlanResponse(_Model):
    """The plan for one prompt."""

    prompt: str
    n: int
    seed: int
    items: list[PlanItem]
    planned_marginals: dict[str, dict[str, int]]
    """Slot -> class -> number of items planned."""
    targets: dict[str, dict[str, float]]
    """Slot -> class -> the share planned for (after a profile, the request proportions)."""
    planning_gap: dict[str, float]
    """Slot -> TV(planned marginals, target); 0 whenever every n x share is an integer."""
    abstain_reasons: list[AbstainCode]
    """Empty unless the prompt was left unchanged."""
    warnings: list[PlanWarning]
    analysis: Analysis
    profile: dict[str, Any] | None = None
    """The profile used: name, and per attribute the target, solved proportions, expected judged shares."""
    versions: dict[str, str | None]
    """Package, planner, vocabulary, lexicon, analyser, rewriter, embedder and profile versions."""
    config_hash: str
    """SHA-256 (16 hex digits) of the normalised request, the versions and the server settings."""


class BatchResponse(_Model):
    """Plans for a batch, in request order."""

    results: list[PlanResponse]
