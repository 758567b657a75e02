"""Simulated audits with a known truth, to show that the distribution family's intervals cover.

An interval's promise is its coverage, so it is tested against a known truth over many
simulated audits (METRICS.md, "Uncertainty"): each prompt j of a simulated audit gets a true
label distribution ``theta_j`` (exactly the scenario's mean, or a Dirichlet draw around it, so
prompts differ), each image is judged ``unknown`` with the scenario's unknown rate, and label
counts are drawn. The estimand is the metric at the true ``theta_j`` (mean over the audited
prompts; pooled for the context-free severity), or with ``estimand: prompt_population`` its
expectation over the scenario's prompt population (fresh prompts per simulated audit).
``coverage`` runs the real metric code (``family.group_values``) on each simulated audit and
counts how often each aggregate interval covers its estimand and contains its own value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from t2iaudit.metrics.compute import MetricsOptions
from t2iaudit.metrics.distribution.family import group_values
from t2iaudit.metrics.table import LabelCounts
from t2iaudit.types import MetricValue

Key = tuple[str, str, str | None]
"""(reference or "", metric, label for shares)."""


@dataclass(frozen=True)
class Scenario:
    """How the prompts of a simulated audit are drawn."""

    name: str
    attribute: str
    labels: tuple[str, ...]
    mean: tuple[float, ...]
    """Mean label distribution over the prompt population."""
    concentration: float | None = None
    """Dirichlet concentration of each prompt's distribution around ``mean``; None: every prompt
    is exactly at ``mean`` (no difference between prompts)."""
    unknown_rate: float = 0.1

    def draw(self, prompts: int, rng: np.random.Generator) -> np.ndarray:
        """True label distributions ``(P, K)`` of ``prompts`` prompts."""
        mean = np.asarray(self.mean, dtype=float)
        if self.concentration is None:
            return np.tile(mean, (prompts, 1))
        return rng.dirichlet(self.concentration * mean, size=prompts)


GENDER = ("female", "male")
AGE = ("young", "middle-aged", "older")
RACE = ("White", "East Asian", "Black", "South Asian")
MONK = tuple(f"monk-{i}" for i in range(1, 11))


def _monk(weights: list[float]) -> tuple[float, ...]:
    w = np.asarray(weights, dtype=float)
    return tuple((w / w.sum()).tolist())


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("gender-balanced", "gender", GENDER, (0.5, 0.5)),
        Scenario("gender-balanced-spread", "gender", GENDER, (0.5, 0.5), 16.0),
        Scenario("gender-mild", "gender", GENDER, (0.65, 0.35), 20.0),
        Scenario("gender-strong", "gender", GENDER, (0.9, 0.1), 20.0),
        Scenario("age-balanced", "age", AGE, (1 / 3, 1 / 3, 1 / 3)),
        Scenario("age-mild", "age", AGE, (0.45, 0.35, 0.2), 20.0),
        Scenario("age-strong", "age", AGE, (0.8, 0.15, 0.05), 20.0),
        Scenario("race-balanced", "race", RACE, (0.25, 0.25, 0.25, 0.25)),
        Scenario("race-strong", "race", RACE, (0.7, 0.1, 0.1, 0.1), 20.0),
        Scenario("skin-balanced", "skin_tone", MONK, tuple([0.1] * 10)),
        Scenario("skin-strong", "skin_tone", MONK, _monk([8, 12, 14, 10, 6, 4, 2, 1, 1, 1]), 30.0),
    ]
}
"""The grid's models: balanced (every prompt exactly uniform, and spread around uniform),
mildly and strongly skewed, for each protected attribute's label count."""


def _options(options: MetricsOptions, attribute: str, reference: dict[str, float] | None) -> MetricsOptions:
    refs = ["uniform"] + (["sim"] if reference else [])
    custom = {"sim": {attribute: reference}} if reference else {}
    return options.model_copy(update={"references": refs, "custom_references": custom, "intersections": []})


def _group(scenario: Scenario, counts: np.ndarray) -> LabelCounts:
    prompt_ids = [f"p{j:04d}" for j in range(len(counts))]
    return LabelCounts("m", "j", scenario.attribute, list(scenario.labels), prompt_ids, counts)


def truth(scenario: Scenario, theta: np.ndarray, options: MetricsOptions) -> dict[Key, float]:
    """Every aggregate metric at the true distributions ``theta`` (P, K) of the audited prompts."""
    u = scenario.unknown_rate
    expected = np.concatenate([theta * (1.0 - u), np.full((len(theta), 1), u)], axis=1) * 1e6
    values = group_values(_group(scenario, expected), options.model_copy(update={"bootstrap_resamples": 0}))
    return {_key(v): float(v.value) for v in values if "prompt_id" not in v.scope and v.value is not None}


def population_truth(scenario: Scenario, options: MetricsOptions, rng: np.random.Generator) -> dict[Key, float]:
    """Expected aggregate metrics over the scenario's prompt population (Monte Carlo)."""
    if scenario.concentration is None:
        return truth(scenario, scenario.draw(1, rng), options)
    return truth(scenario, scenario.draw(10_000, rng), options)


TEST_OUTCOMES = frozenset(
    {
        "D10_gof_chi2",
        "D10_gof_p",
        "D10_gof_significant_share",
        "D11_amplified_share",
        "D11_reflected_share",
        "D11_mitigated_share",
    }
)
"""Metrics that summarise hypothesis tests: their value depends on the images per prompt (a test's
power), so the "true" value at infinite images is not what their interval estimates, and the
coverage grid leaves them out."""


def _key(v: MetricValue) -> Key:
    return (v.params.get("reference", ""), v.metric, v.params.get("label"))


@dataclass
class CoverageCell:
    """Coverage of one metric in one cell of the grid."""

    covered: int = 0
    contains_value: int = 0
    runs: int = 0
    width: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.covered / self.runs if self.runs else float("nan")


def coverage(
    scenario: Scenario,
    prompts: int,
    images: int,
    sims: int,
    options: MetricsOptions,
    *,
    reference: tuple[float, ...] | None = None,
    seed: int = 0,
) -> dict[Key, CoverageCell]:
    """Simulate ``sims`` audits of ``prompts`` x ``images`` and count covering intervals.

    Args:
        scenario: How prompts are drawn.
        prompts: Prompts per audit.
        images: Images per prompt (each judged unknown with the scenario's unknown rate).
        sims: Simulated audits.
        options: Metric options (``estimand`` picks the truth the intervals are checked against).
        reference: A reference distribution for the D9 metrics besides uniform.
        seed: Seed of the simulation.
    """
    rng = np.random.default_rng(seed)
    ref = dict(zip(scenario.labels, reference)) if reference else None
    opts = _options(options, scenario.attribute, ref)
    population = options.estimand == "prompt_population"
    fixed = population_truth(scenario, opts, np.random.default_rng(seed + 1)) if population else None
    out: dict[Key, CoverageCell] = {}
    u = scenario.unknown_rate
    for sim in range(sims):
        theta = scenario.draw(prompts, rng)
        probs = np.concatenate([theta * (1.0 - u), np.full((prompts, 1), u)], axis=1)
        counts = rng.multinomial(images, probs)
        target = fixed if fixed is not None else truth(scenario, theta, opts)
        run = opts.model_copy(update={"seed": seed * 100_003 + sim})
        for v in group_values(_group(scenario, counts), run):
            if "prompt_id" in v.scope or v.value is None or v.ci_low is None or v.ci_high is None:
                continue
            key = _key(v)
            if key not in target or v.metric in TEST_OUTCOMES:
                continue
            cell = out.setdefault(key, CoverageCell())
            cell.runs += 1
            cell.covered += v.ci_low - 1e-12 <= target[key] <= v.ci_high + 1e-12
            cell.contains_value += v.ci_low <= v.value <= v.ci_high
            cell.width.append(v.ci_high - v.ci_low)
    return out


def j3_coverage(
    labels: int,
    accuracy: float,
    calibration_images: int,
    scenario: Scenario,
    prompts: int,
    images: int,
    sims: int,
    *,
    estimand: str = "audited_prompts",
    resamples: int = 400,
    seed: int = 0,
) -> list[CoverageCell]:
    """Coverage of J3's corrected shares (one cell per label) for a judge of known accuracy.

    The judge's confusion matrix has ``accuracy`` on the diagonal and its errors spread evenly;
    the calibration set has ``calibration_images`` images, balanced over the labels. Each image
    of the audit has a true label drawn from its prompt's distribution (the scenario's, which
    must have ``labels`` labels) and a judged label drawn from the confusion row of its truth.
    """
    from t2iaudit.metrics.judge_validity.correction import corrected_interval

    rng = np.random.default_rng(seed)
    k = labels
    confusion = np.full((k, k), (1.0 - accuracy) / (k - 1))
    np.fill_diagonal(confusion, accuracy)
    out = [CoverageCell() for _ in range(k)]
    mean = np.asarray(scenario.mean, dtype=float)
    for _ in range(sims):
        theta = scenario.draw(prompts, rng)
        target = mean if estimand == "prompt_population" else theta.mean(axis=0)
        cal_truth = rng.multinomial(calibration_images, np.full(k, 1.0 / k))
        calibration = np.stack([rng.multinomial(cal_truth[j], confusion[j]) for j in range(k)])
        true_counts = np.stack([rng.multinomial(images, t) for t in theta])
        judged = np.stack([sum(rng.multinomial(c[j], confusion[j]) for j in range(k)) for c in true_counts])
        est, low, high = corrected_interval(
            calibration, judged, resamples, rng, resample_prompts=estimand == "prompt_population"
        )
        for i, cell in enumerate(out):
            cell.runs += 1
            cell.covered += low[i] - 1e-12 <= target[i] <= high[i] + 1e-12
            cell.contains_value += low[i] <= est[i] <= high[i]
            cell.width.append(high[i] - low[i])
    return out
