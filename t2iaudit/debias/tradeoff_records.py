"""Records of the closed loop's trade-off report (``tradeoff.json``): what debiasing changed, and what it cost."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from t2iaudit.debias.profiles import Solution
from t2iaudit.debias.textaudit import RewriterBias
from t2iaudit.types import Record

FORMAT_VERSION = 1


class Rate(Record):
    """A value with its 95% interval and the numbers behind it."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    """Items in the denominator (labels, images or pairs)."""
    n_unknown: int = 0
    """Images the judge answered ``unknown`` (not in ``n``)."""
    interval: str = "wilson"
    """``wilson`` (proportions) or ``bootstrap`` (means over pairs, stratified by prompt)."""


class LabelChange(Record):
    """One label's share among valid labels before (original prompts) and after (debiased)."""

    label: str
    count_original: int
    count_debiased: int
    share_original: Rate
    share_debiased: Rate
    diff: float | None
    """``share_debiased - share_original``."""
    diff_low: float | None
    diff_high: float | None
    """Newcombe's hybrid score interval of ``diff``."""


class DistributionChange(Record):
    """Original against debiased images of one cell (a group of prompts, or one prompt): a 2 x K test."""

    cell: str
    """``debiased prompts``, ``left alone`` or a parent prompt id."""
    labels: list[LabelChange]
    chi2: float | None
    dof: int | None
    p_value: float | None
    test: str
    """``chi2`` (Pearson, no continuity correction) or ``fisher`` (an expected count below 5)."""
    p_test: float | None
    """The p-value of ``test``."""
    p_holm: float | None
    """Holm-adjusted across the cells tested together (groups, or prompts), unknown-rate tests included."""
    unknown_original: Rate
    unknown_debiased: Rate
    """Unknown rate ``U / (N + U)`` of each side (its own test, METRICS.md: unknowns are never a class)."""
    unknown_p_holm: float | None


class Realisation(Record):
    """H4 on the debiased prompts: does the image show the class the plan asked for?"""

    labels: list[str]
    """The judge's declared labels (columns)."""
    requested: list[str]
    """The planned classes (rows)."""
    counts: list[list[int]]
    """Images per (planned, judged) among valid labels."""
    unknown: list[int]
    """Images per planned class judged ``unknown``."""
    matrix: list[list[float | None]]
    """``M[a, k] = P(judged k | planned a)`` among valid labels; None: no valid label in the row."""
    rate: Rate
    """Realisation rate ``(1/n) sum 1[judged = planned]`` over valid labels (Wilson)."""


class Alignment(Record):
    """What the rewrite cost in fidelity to the user's prompt, for one model (pairs of one seed)."""

    model_id: str
    judge_id: str
    """The clip judge whose model embedded images and texts."""
    pairs: int
    """Original/debiased image pairs of debiased prompts (same parent, same seed)."""
    clipscore_original: Rate
    """CLIPScore ``2.5 max(cos, 0)`` of the original images against the original prompt."""
    clipscore_debiased: Rate
    """CLIPScore of the debiased images against the *original* prompt."""
    clipscore_change: Rate
    """Paired mean of debiased minus original CLIPScore."""
    image_similarity: Rate
    """Mean cosine between CLIP image embeddings of the debiased and the original image."""


class AttributeTradeoff(Record):
    """One model and attribute in one round, measured by the loop's judge."""

    model_id: str
    attribute: str
    judge_id: str
    target: dict[str, float]
    planned: dict[str, float]
    """Shares of the classes the plan assigned to the debiased prompts' variants."""
    planning_gap: float | None
    """``TV(planned, requested proportions)``: 0 when every quota is exact."""
    pooled: DistributionChange
    """All debiased prompts together."""
    left_alone: DistributionChange | None
    """Prompts the analyser left alone (named, historical, ...): same text, same seeds."""
    prompts: list[DistributionChange] = Field(default_factory=list)
    """One cell per debiased prompt, Holm-adjusted across them."""
    tv_original: float | None
    tv_debiased: float | None
    """Total variation distance of the valid-label shares from the target (plug-in; the stopping rule)."""
    realisation: Realisation
    overcorrection_original: Rate | None
    overcorrection_debiased: Rate | None
    """H6 on prompts whose context fixes the attribute (meta ``fixed_<attr>``), from each run's
    ``metrics.jsonl``; None: no such prompt."""


class RoundPlan(Record):
    """How one round was planned (``plans/round-<k>.json``)."""

    round: int
    profile: str | None
    """The realisation profile the planner used (round 1: the spec's; later: measured by the loop)."""
    targets: dict[str, dict[str, float]]
    """Target shares of the judged labels per attribute."""
    requested: dict[str, dict[str, float]]
    """Request proportions per attribute (the target, or the profile's solution for it)."""
    solutions: dict[str, Solution] = Field(default_factory=dict)
    """The profile's solution per attribute it covers (expected reachable shares, TV)."""
    prompts: int
    """Debiased prompt records planned."""
    rewriter: list[RewriterBias] = Field(default_factory=list)
    """The rewriter's own added attributes on this round's rewrite tasks (issue item 8)."""


class RoundTradeoff(Record):
    """One round of the loop against the original audit."""

    round: int
    run_dir: str
    """The round's run directory, relative to the loop directory."""
    plan: RoundPlan
    prompts_debiased: int
    prompts_left_alone: int
    abstain_reasons: dict[str, int] = Field(default_factory=dict)
    """Parent prompts left alone, per reason code."""
    checks_ok: Rate
    """Share of rewrites passing every check (insert-only, names the plan, similarity)."""
    text_similarity: Rate | None
    """Mean sentence-embedding cosine of rewrite and original (None without an embedder)."""
    attributes: list[AttributeTradeoff]
    alignment: list[Alignment] = Field(default_factory=list)
    """Per model; empty when the spec has no clip judge."""
    reached: bool
    """Every model's and attribute's ``tv_debiased`` is within the tolerance."""


class Tradeoff(Record):
    """The closed loop's trade-off (``tradeoff.json``), read by the report."""

    format_version: Literal[1] = 1
    """Version of this file format (``FORMAT_VERSION``)."""
    spec_id: str
    original_run: str
    models: list[str]
    judge_id: str
    clip_judge_id: str | None
    variants: int
    """Debiased variants per original prompt."""
    tolerance: float
    max_rounds: int
    rounds: list[RoundTradeoff]
    stopped: str
    """Why the loop stopped, in words."""
