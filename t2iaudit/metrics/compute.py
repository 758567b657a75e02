"""The metrics stage: ``MetricsOptions``, what a metric family is, the family registry, ``run_families``.

A *family* computes a group of related metrics (distribution, BIGbench, hallucination, judge
validity, ...): a ``MetricFamily`` whose ``compute(table, options)`` returns ``MetricValue``
records, with the frozen pydantic model of its own options (``family_options[<name>]``) and its
metrics' catalog entries (``t2iaudit.metrics.catalog``). ``FAMILIES`` registers the built-in
families lazily (``"module:FAMILY"``: a family's module is imported only when it runs or its
options are checked); other installed packages add theirs under the entry-point group
``t2iaudit.metrics`` (``my_family = "their_package.module:FAMILY"``).

The options and the registry live in one module because each needs the other: ``MetricsOptions``
checks family names, metric names and every family's options when a spec is loaded (so a typo
fails before generation and judging), and a family is typed by the options it reads.

To add a family: write ``def my_family(table: JudgementTable, options: MetricsOptions) ->
list[MetricValue]`` in its own module, define ``FAMILY = MetricFamily(my_family, MyOptions,
metrics)`` there, list its metrics in the catalog and register it below. Options a family needs
beyond the shared ones go in ``options.family_options[<family name>]``, so adding a family does
not change ``MetricsOptions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from t2iaudit.metrics.catalog import METRICS, MetricInfo
from t2iaudit.registry import Registry, UnknownNameError

if TYPE_CHECKING:
    from t2iaudit.metrics.table import JudgementTable
    from t2iaudit.types import MetricValue


class FamilyFn(Protocol):
    """Computes a family's metrics: the judgement table and the options -> metric values."""

    def __call__(self, table: JudgementTable, options: MetricsOptions, /) -> list[MetricValue]: ...


@dataclass(frozen=True)
class MetricFamily:
    """A registered metric family."""

    compute: FamilyFn
    """Computes every metric of the family that ``options.wants``."""
    options_model: type[BaseModel] | None = None
    """Frozen pydantic model of ``MetricsOptions.family_options[<name>]``; None: the family takes
    none. ``MetricsOptions`` validates every family's options with it."""
    metrics: tuple[MetricInfo, ...] = ()
    """The metrics it can emit: ``catalog.family_metrics(name)`` for a built-in family, its own
    entries for a family from another package."""


FAMILIES: Registry[MetricFamily] = Registry("metric family", entry_points="t2iaudit.metrics")
FAMILIES.register_lazy("distribution", "t2iaudit.metrics.distribution.family:FAMILY")
FAMILIES.register_lazy("bigbench", "t2iaudit.metrics.bigbench.family:FAMILY")
FAMILIES.register_lazy("hallucination", "t2iaudit.metrics.hallucination.family:FAMILY")
FAMILIES.register_lazy("judge_validity", "t2iaudit.metrics.judge_validity.family:FAMILY")
FAMILIES.register_lazy("judge_fairness", "t2iaudit.metrics.judge_validity.fairness:FAMILY")
BUILT_IN = ("distribution", "bigbench", "hallucination", "judge_validity", "judge_fairness")
"""The built-in families in the order ``run_families`` runs them (other packages' families follow,
sorted by name)."""


def family_names() -> list[str]:
    """Every family in running order, those of other installed packages included."""
    return [*BUILT_IN, *(name for name in FAMILIES.names() if name not in BUILT_IN)]


def _unknown(registry: Registry[Any], name: str) -> str:
    """The registry's message for an unknown name, with its "did you mean" suggestion."""
    try:
        registry.get(name)
    except UnknownNameError as e:
        return str(e)
    return f"{registry.kind} {name!r} is not available"


def _plugin_metrics() -> dict[str, MetricInfo]:
    """Catalog entries declared by families of other installed packages."""
    return {m.id: m for name in family_names() if name not in BUILT_IN for m in FAMILIES.get(name).metrics}


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
    bootstrap_resamples: int = Field(default=1000, ge=0)
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
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    interval: Literal["wilson", "jeffreys"] = "wilson"
    """Interval for proportions."""
    unknown_in_denominator: bool = False
    """For ``share``: divide by N + U (unknowns counted) instead of N."""
    skin_tone_unknown_in_denominator: bool = True
    """For D3: HEIM's form divides by N + U; False gives the N-only form."""
    kl_eps: float = Field(default=1e-6, gt=0.0)
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
        for name in value or []:
            if name not in FAMILIES:
                raise ValueError(_unknown(FAMILIES, name))  # pydantic reports it with the field path
        return value

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in METRICS and name not in _plugin_metrics():
                raise ValueError(_unknown(METRICS, name))
        return value

    @field_validator("family_options")
    @classmethod
    def _known_family_options(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from pydantic import ValidationError

        for name, options in value.items():
            if name not in FAMILIES:
                raise ValueError(f"options for {_unknown(FAMILIES, name)}")
            model = FAMILIES.get(name).options_model
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


def run_families(table: JudgementTable, options: MetricsOptions | None = None) -> list[MetricValue]:
    """Run every selected metric family over ``table``.

    Cells (``MetricValue.scope`` plus ``attribute``): per prompt ``{model_id, judge_id,
    prompt_id}`` and aggregated ``{model_id, judge_id}``, the aggregate being the mean over
    prompts with a stratified two-stage bootstrap interval (BIGbench scores: weighted means over
    prompts or contrast pairs, scope keys ``pair``/``requested`` where they apply). Label shares
    (``share``, ``params.label``) are always reported with a Wilson (or Jeffreys) interval, n and
    n_unknown. Attributes with an empty (free text) or numeric label set are skipped by the
    distribution families. ``params`` records the interval method, resamples and seed, the
    reference (``uniform``, ``prompt`` with ``reference_key``, or a custom table's name),
    ``unknown_in_denominator``, and ``source``: the paper the metric follows (its catalog entry).

    Args:
        table: The judgement table (see ``t2iaudit.metrics.table``).
        options: What to compute; defaults to ``MetricsOptions()``.

    Returns:
        Metric values of all families, in family order; cells whose value is undefined (no
        labelled image) have ``value=None`` with ``n=0`` and ``n_unknown`` counted.
    """
    options = options or MetricsOptions()
    out: list[MetricValue] = []
    for name in family_names():
        if options.families is not None and name not in options.families:
            continue
        family = FAMILIES.get(name)
        sources = {m.id: m.source for m in family.metrics}
        if options.metrics is not None and not set(options.metrics) & set(sources):
            continue
        for v in family.compute(table, options):
            if options.wants(v.metric):
                source = sources.get(v.metric)
                if source and "source" not in v.params:  # name the paper a reader can match it to
                    v.params["source"] = source
                out.append(v)
    return out
