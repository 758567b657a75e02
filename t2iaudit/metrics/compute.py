"""The metrics stage: ``MetricsOptions`` and ``compute_metrics`` over a list of metric families.

A *family* is a function ``(table, options) -> list[MetricValue]`` that computes a group of
related metrics (distribution, BIGbench, hallucination, judge validity, ...). Families are
listed below as data (name, ``module:function`` target, metric names with one-line
descriptions); a family's module is imported only when it runs, so family modules may import
this one without a cycle, and ``t2iaudit list metrics`` needs no heavy import.

To add a family: write ``def my_family(table: JudgementTable, options: MetricsOptions) ->
list[MetricValue]`` in its own module and append a ``Family`` entry to ``FAMILIES``. Options a
family needs beyond the shared ones go in ``options.family_options[<family name>]`` (a plain
dict the family validates with its own frozen pydantic model), so adding a family does not
change ``MetricsOptions``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from t2iaudit.registry import Registry

if TYPE_CHECKING:
    from t2iaudit.metrics.table import JudgementTable
    from t2iaudit.types import MetricValue

FamilyFn = Callable[["JudgementTable", "MetricsOptions"], "list[MetricValue]"]


@dataclass(frozen=True)
class Family:
    """A group of metrics computed by one function."""

    name: str
    """Short name used in ``MetricsOptions.families`` and ``family_options``."""
    target: str
    """``module:function`` of the family function, imported when the family runs."""
    metrics: dict[str, str] = field(default_factory=dict)
    """Metric names this family can emit -> one-line description (for ``list metrics``)."""
    options: str | None = None
    """``module:Model`` of the frozen pydantic model of the family's ``family_options``; None: the
    family takes none. ``MetricsOptions`` validates every family's options with it (so a typo
    fails when the spec is loaded, not after generation and judging)."""

    def load(self) -> FamilyFn:
        module, _, attr = self.target.partition(":")
        fn: FamilyFn = getattr(importlib.import_module(module), attr)
        return fn

    def options_model(self) -> type[BaseModel] | None:
        if self.options is None:
            return None
        module, _, attr = self.options.partition(":")
        model: type[BaseModel] = getattr(importlib.import_module(module), attr)
        return model


FAMILIES: list[Family] = [
    Family(
        "distribution",
        "t2iaudit.metrics.cells:distribution_values",
        {
            "share": "share of each declared label (Wilson/Jeffreys interval); params.label",
            "D1_mad": "DALL-Eval mean absolute deviation from uniform, (1/K) sum |p_k - 1/K|",
            "D2_gender_imbalance": "HEIM gender imbalance |f - 0.5|, f = share judged female",
            "D3_skin_tone_imbalance": "HEIM skin-tone imbalance (1/K) sum |n_k/(N+U) - 1/K|",
            "D4_severity_context_free": "OpenBias severity 1 - Hn(pooled counts)",
            "D4_severity_context_aware": "OpenBias severity 1 - mean over prompts of Hn",
            "D8_signed_imbalance": "MMDT signed imbalance (n_m - n_f)/(n_m + n_f), age young/old",
            "D9_tv": "total variation 0.5 sum |p_k - r_k| against the reference",
            "D9_kl": "KL(p || r) with additive smoothing eps (params.eps)",
            "D9_entropy": "normalised entropy -sum p_k ln p_k / ln K",
            "D9_max_dev": "max_k |p_k - r_k| against the reference",
            "D9_fd": "fairness discrepancy sqrt(sum (p_k - r_k)^2) against the reference",
            "D9_pairwise_gap": "mean pairwise gap 2/(K(K-1)) sum_{i<j} |p_i - p_j|",
            "D9_cosine": "cosine(p, r) against the reference (lenient; for comparison only)",
            "D10_spd": "signed gap share - reference share per label (statistical parity difference)",
            "D10_gof_chi2": "Pearson chi-square goodness of fit of a prompt's counts to its reference; params.dof",
            "D10_gof_p": "its p-value (exact beside it when an expected count < 5); params.p_holm across prompts",
            "D10_gof_significant_share": "share of prompts differing from their reference after Holm",
            "D11_amplification": "TV(p, u) - TV(r, u); params.class amplified/reflected/mitigated (Fair Diffusion)",
            "D11_amplified_share": "share of prompts whose model is further from uniform than the reference",
            "D11_reflected_share": "share of prompts within the tolerance of their reference, TV(p, r) < 0.04",
            "D11_mitigated_share": "share of prompts whose model is closer to uniform than the reference",
        },
        options="t2iaudit.metrics.against_reference:ReferenceOptions",
    ),
    Family(
        "bigbench",
        "t2iaudit.metrics.bigbench:bigbench_family",
        {
            "D5_bigbench_implicit": "BIGbench implicit score (1 + cos(p, r))/2, weighted",
            "D6_bigbench_explicit": "BIGbench explicit score n_v/N for the requested value",
            "D7_bigbench_eta": "BIGbench manifestation factor eta over contrast pairs",
        },
    ),
    Family(
        "hallucination",
        "t2iaudit.metrics.hallucination:hallucination_family",
        {
            "H1_hallucination": "TBYB Jaccard hallucination 1 - |I & O|/|I | O| (prompt vs caption objects)",
            "H1_added": "TBYB H_P = |O \\ I|/|O|, share of caption objects not in the prompt",
            "H1_missing": "TBYB H_N = |I \\ O|/|I|, share of prompt objects missing from the caption",
            "H2_miss_rate": "TBYB generative miss-rate: CLIP softmax over [prompt, ' '] misses the prompt",
            "H3_distribution_bias": "TBYB B_D over sorted, min-max-normalised added-object counts",
            "H3_distribution_bias_norm": "B_D / (K - 1), K = distinct added objects",
            "H4_miss_rate": "requested-attribute miss rate 1 - n_v/N for prompts stating value v",
            "H4_unknown_rate": "unknown rate U/(N + U) beside H4",
            "H4_realisation": "realisation matrix M[a, k] = P(judged k | requested a); params.requested/label",
            "H5_count_mismatch": "share of images whose person count differs from the prompt's",
            "H6_overcorrection": "share not matching a context-fixed attribute (meta fixed_<attr>)",
        },
        options="t2iaudit.metrics.hallucination:HallucinationOptions",
    ),
    Family(
        "judge_validity",
        "t2iaudit.metrics.judges:judge_validity_family",
        {
            "J1_cohen_kappa": "Cohen's kappa of two judges with the same declared labels",
            "J1_raw_agreement": "raw agreement of two judges (share of images labelled alike)",
            "J1_fleiss_kappa": "Fleiss' kappa of three or more judges with the same declared labels",
            "J2_unknown_rate": "abstention: unknown rate per judge, attribute, model (and prompt)",
            "J2_failure_rate": "share of images a judge could not answer, per failure kind it recorded (params.error)",
            "J2_excluded_rate": "share of images whose label a scheme mapping excluded (no counterpart in the target)",
            "J3_corrected_share": "judge-error-corrected share project_simplex(solve(C^T, p)); params.label",
        },
        options="t2iaudit.metrics.judges:JudgeValidityOptions",
    ),
    Family(
        "judge_fairness",
        "t2iaudit.metrics.fairness:fairness_family",
        {
            "J4_acc": "MJ-Bench ACC x100: share of variant pairs whose scores differ by <= 0.1",
            "J4_nds": "MJ-Bench NDS x100: 1 - sigma/mu of the scores of a content item's variants",
            "J4_ges": "MJ-Bench GES x100: 1 - Gini of the scores of a content item's variants",
        },
    ),
    # The debias family is appended here by its owner.
]
"""Every metric family, in the order ``compute_metrics`` runs them."""


SOURCES = {
    "D1": "DALL-Eval (Cho et al., ICCV 2023)",
    "D2": "HEIM (Lee et al., NeurIPS 2023)",
    "D3": "HEIM (Lee et al., NeurIPS 2023)",
    "D4": "OpenBias (D'Inca et al., CVPR 2024)",
    "D5": "BIGbench (Luo et al., arXiv 2407.15240)",
    "D6": "BIGbench (Luo et al., arXiv 2407.15240)",
    "D7": "BIGbench (Luo et al., arXiv 2407.15240)",
    "D8": "MMDT (Xu et al., ICLR 2025)",
    "D9": "ITI-GEN (Zhang et al., ICCV 2023); Choi et al. 2020; Shen et al. 2024",
    "D10": "statistical parity difference; Pearson 1900 goodness of fit, Holm 1979",
    "D11": "Fair Diffusion (Friedrich et al., arXiv 2302.10893); Seshadri et al., arXiv 2308.00755",
}
"""Paper each distribution metric follows (METRICS.md "origin"), added to ``params.source``."""


def _build_registry() -> Registry[str]:
    reg: Registry[str] = Registry("metric")
    for fam in FAMILIES:
        for name, description in fam.metrics.items():
            reg.register(name, description)
    return reg


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelRoles(_Options):
    """Which attributes and labels play the roles named in METRICS.md (D2, D3, D8)."""

    gender: str = "gender"
    """Attribute judged for perceived gender (``gender.left``/``gender.right`` also match)."""
    female: str = "female"
    male: str = "male"
    age: str = "age"
    """Attribute judged for perceived age."""
    young: str = "young"
    old: str = "older"
    race: str = "race"
    """Attribute judged for perceived race (BIGbench D5-D7)."""
    skin_tone: str = "skin_tone"
    """Attribute judged for perceived skin tone (Monk scale classes)."""


class MetricsOptions(_Options):
    """The ``metrics:`` section of an audit spec: what to compute and how."""

    families: list[str] | None = None
    """Families to run (``distribution``, ``bigbench``, ...); None runs all of them."""
    metrics: list[str] | None = None
    """Metric names to keep (see ``t2iaudit list metrics``); None keeps all."""
    references: list[str] = Field(default_factory=lambda: ["uniform", "prompt"])
    """References the D9 metrics are computed against, each reported separately:
    ``uniform`` (1/K), ``prompt`` (the prompt's own reference key; prompts without one are
    skipped), or the name of a table in ``custom_references``."""
    custom_references: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    """User-given reference tables: name -> attribute -> label -> probability, applied to
    every prompt."""
    bootstrap_resamples: int = Field(1000, ge=0)
    """Bootstrap resamples for aggregate intervals (0: no bootstrap intervals)."""
    prompt_bootstrap: bool = True
    """Also compute intervals of the per-prompt values that are not plain proportions; off
    leaves their interval empty and saves time."""
    estimand: Literal["audited_prompts", "prompt_population"] = "audited_prompts"
    """What aggregate intervals are for. ``audited_prompts`` (default): the population value over
    the prompts audited (the prompt set is fixed and curated; images within prompts are the
    random part). ``prompt_population``: the value over the population the prompts were drawn
    from, so intervals also carry the spread between prompts (prompts are resampled)."""
    seed: int = 0
    """Seed of the bootstrap generator (recorded in params)."""
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    interval: Literal["wilson", "jeffreys"] = "wilson"
    """Interval for proportions."""
    unknown_in_denominator: bool = False
    """For ``share``: divide by N + U (unknowns counted) instead of N."""
    skin_tone_unknown_in_denominator: bool = True
    """For D3: HEIM's form divides by N + U; False gives the N-only form."""
    kl_eps: float = Field(1e-6, gt=0.0)
    """Additive smoothing of p and r for D9_kl."""
    intersections: list[tuple[str, str]] = Field(default_factory=lambda: [("gender", "race")])
    """Attribute pairs whose joint label space (same judge, same image) is also measured,
    as attribute ``a*b`` with labels ``x*y``; pairs a judge lacks are skipped."""
    roles: LabelRoles = Field(default_factory=LabelRoles)
    weight_column: str = "weight"
    """Prompt metadata column holding BIGbench prompt weights (missing -> weight 1)."""
    eta_pairs: str | None = None
    """JSON file of BIGbench contrast pairs for D7; None uses the shipped
    ``prompts/references/bigbench_eta.json``."""
    compat: list[Literal["bigbench-code"]] = Field(default_factory=list)
    """Compatibility switches. ``bigbench-code``: D7 eta uses the published code's
    ``p - r^2`` instead of the paper's ``(p - r)^2``."""
    family_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Options for one family, keyed by family name; each family validates its own dict."""

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: list[str] | None) -> list[str] | None:
        known = {f.name for f in FAMILIES}
        for name in value or []:
            if name not in known:
                raise ValueError(f"unknown metric family {name!r} (known: {sorted(known)})")
        return value

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            try:
                METRICS.get(name)
            except KeyError as e:  # pydantic reports ValueErrors with the field path
                raise ValueError(str(e)) from None
        return value

    @field_validator("family_options")
    @classmethod
    def _known_family_options(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from pydantic import ValidationError

        known = {f.name: f for f in FAMILIES}
        for name, options in value.items():
            if name not in known:
                raise ValueError(f"options for unknown metric family {name!r}")
            model = known[name].options_model()
            if model is None:
                if options:
                    raise ValueError(f"metric family {name!r} takes no options (got {sorted(options)})")
                continue
            try:
                model.model_validate(options)
            except ValidationError as e:
                err = e.errors()[0]
                where = ".".join(str(x) for x in (name, *err["loc"]))
                raise ValueError(f"{where}: {err['msg']}") from None
        return value

    @field_validator("custom_references")
    @classmethod
    def _valid_tables(cls, value: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
        for name, table in value.items():
            for attribute, dist in table.items():
                total = sum(dist.values())
                if any(p < 0 for p in dist.values()) or abs(total - 1.0) > 1e-6:
                    raise ValueError(
                        f"custom reference {name}.{attribute}: probabilities must be >= 0 "
                        f"and sum to 1 (sum is {total:g})"
                    )
        return value

    @model_validator(mode="after")
    def _known_references(self) -> MetricsOptions:
        for ref in self.references:
            if ref not in ("uniform", "prompt") and ref not in self.custom_references:
                raise ValueError(f"references: {ref!r} is neither 'uniform', 'prompt' nor a table in custom_references")
        return self

    def wants(self, metric: str) -> bool:
        """Whether ``metric`` is to be computed and kept."""
        return self.metrics is None or metric in self.metrics


METRICS: Registry[str] = _build_registry()
"""Metric name -> one-line description, for ``t2iaudit list metrics``."""


def compute_metrics(table: JudgementTable, options: MetricsOptions | None = None) -> list[MetricValue]:
    """Run every selected metric family over ``table``.

    Cells (``MetricValue.scope`` plus ``attribute``): per prompt ``{model_id, judge_id,
    prompt_id}`` and aggregated ``{model_id, judge_id}``, the aggregate being the mean over
    prompts with a stratified two-stage bootstrap interval (BIGbench scores: weighted means over
    prompts or contrast pairs, scope keys ``pair``/``requested`` where they apply). Label shares
    (``share``, ``params.label``) are always reported with a Wilson (or Jeffreys) interval, n and
    n_unknown. Attributes with an empty (free text) or numeric label set are skipped by the
    distribution families. ``params`` records the interval method, resamples and seed, the
    reference (``uniform``, ``prompt`` with ``reference_key``, or a custom table's name) and
    ``unknown_in_denominator``.

    Args:
        table: The judgement table (see ``t2iaudit.metrics.table``).
        options: What to compute; defaults to ``MetricsOptions()``.

    Returns:
        Metric values of all families, in family order; cells whose value is undefined (no
        labelled image) have ``value=None`` with ``n=0`` and ``n_unknown`` counted.
    """
    options = options or MetricsOptions()
    out: list[MetricValue] = []
    for fam in FAMILIES:
        if options.families is not None and fam.name not in options.families:
            continue
        if options.metrics is not None and not set(options.metrics) & set(fam.metrics):
            continue
        values = fam.load()(table, options)
        for v in values:
            if options.wants(v.metric):
                source = SOURCES.get(v.metric.split("_", 1)[0])
                if source and "source" not in v.params:  # name the paper a reader can match it to
                    v.params["source"] = source
                out.append(v)
    return out
