"""The catalog of every metric: id, family, one-line description, source paper, direction, headline.

One place says what each metric is (METRICS.md has the exact definitions): ``t2iaudit list
metrics`` prints it, the metrics stage adds each metric's source to ``params.source`` of every
value it keeps (``t2iaudit.metrics.compute.run_families``), the report describes metrics with
it, and ``MetricsOptions.metrics`` is checked against it. The families registered in
``t2iaudit.metrics.compute.FAMILIES`` emit exactly the metrics listed here under their name
(``tests/metrics/test_catalog.py`` checks both directions). This module imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

from t2iaudit.registry import Registry


@dataclass(frozen=True)
class MetricInfo:
    """What one metric is (a family from another package declares its own)."""

    id: str
    """The name in ``MetricValue.metric``, e.g. ``D9_tv``."""
    family: str
    """The family that computes it (``distribution``, ``bigbench``, ...)."""
    description: str
    """One line: the formula in words, and the params a reader needs."""
    source: str | None = None
    """Paper or method it follows, added to ``params.source`` of every value (None: ours)."""
    lower_is_better: bool | None = None
    """True when smaller values mean less bias or a better judge, False when larger ones do,
    None when it has no direction (a share, a signed gap, a p-value)."""
    headline: bool = False
    """Whether the report's verdict and summary show it by default."""

    def __str__(self) -> str:
        return self.description


DALL_EVAL = "DALL-Eval (Cho et al., ICCV 2023)"
HEIM = "HEIM (Lee et al., NeurIPS 2023)"
OPENBIAS = "OpenBias (D'Inca et al., CVPR 2024)"
BIGBENCH = "BIGbench (Luo et al., arXiv 2407.15240)"
MMDT = "MMDT (Xu et al., ICLR 2025)"
GENERIC = "ITI-GEN (Zhang et al., ICCV 2023); Choi et al. 2020; Shen et al. 2024"
PARITY = "statistical parity difference; Pearson 1900 goodness of fit, Holm 1979"
AMPLIFICATION = "Fair Diffusion (Friedrich et al., arXiv 2302.10893); Seshadri et al., arXiv 2308.00755"
TBYB = "TBYB (Vice et al., arXiv 2312.13053)"
MJ_BENCH = "MJ-Bench (Chen et al., arXiv 2407.04842)"
OVERKILL = "MMDT (Xu et al., ICLR 2025), over-correction (overkill)"
COHEN = "Cohen 1960"
FLEISS = "Fleiss 1971"
CLEAM = "CLEAM-style correction (Teo et al., NeurIPS 2023)"

LOWER, HIGHER, NONE = True, False, None
"""``lower_is_better`` values, for the tables below."""

Row = tuple[str, bool | None, str | None, str]
"""``(id, lower_is_better, source, description)``."""


HEADLINE = frozenset(
    {"share", "D9_tv", "D10_gof_p", "D10_gof_significant_share", "D11_amplification", "J2_unknown_rate"}
)
"""What the verdict table and ``summary.md`` show: the most common label's share, the skew (TV),
whether prompts differ from their reference (D10) or amplify it (D11), and the unknown rate."""


def _family(family: str, rows: list[Row]) -> list[MetricInfo]:
    return [MetricInfo(id, family, desc, source, lower, id in HEADLINE) for id, lower, source, desc in rows]


_ENTRIES = _family(
    "distribution",
    [
        ("share", NONE, None, "share of each declared label (Wilson/Jeffreys interval); params.label"),
        ("D1_mad", LOWER, DALL_EVAL, "DALL-Eval mean absolute deviation from uniform, (1/K) sum |p_k - 1/K|"),
        ("D2_gender_imbalance", LOWER, HEIM, "HEIM gender imbalance |f - 0.5|, f = share judged female"),
        ("D3_skin_tone_imbalance", LOWER, HEIM, "HEIM skin-tone imbalance (1/K) sum |n_k/(N+U) - 1/K|"),
        ("D4_severity_context_free", LOWER, OPENBIAS, "OpenBias severity 1 - Hn(pooled counts)"),
        ("D4_severity_context_aware", LOWER, OPENBIAS, "OpenBias severity 1 - mean over prompts of Hn"),
        ("D8_signed_imbalance", NONE, MMDT, "MMDT signed imbalance (n_m - n_f)/(n_m + n_f), age young/old"),
        ("D9_tv", LOWER, GENERIC, "total variation 0.5 sum |p_k - r_k| against the reference"),
        ("D9_kl", LOWER, GENERIC, "KL(p || r) with additive smoothing eps (params.eps)"),
        ("D9_entropy", HIGHER, GENERIC, "normalised entropy -sum p_k ln p_k / ln K"),
        ("D9_max_dev", LOWER, GENERIC, "max_k |p_k - r_k| against the reference"),
        ("D9_fd", LOWER, GENERIC, "fairness discrepancy sqrt(sum (p_k - r_k)^2) against the reference"),
        ("D9_pairwise_gap", LOWER, GENERIC, "mean pairwise gap 2/(K(K-1)) sum_{i<j} |p_i - p_j|"),
        ("D9_cosine", HIGHER, GENERIC, "cosine(p, r) against the reference (lenient; for comparison only)"),
        ("D10_spd", NONE, PARITY, "signed gap share - reference share per label (statistical parity difference)"),
        (
            "D10_gof_chi2",
            NONE,
            PARITY,
            "Pearson chi-square goodness of fit of a prompt's counts to its reference; params.dof",
        ),
        (
            "D10_gof_p",
            NONE,
            PARITY,
            "its p-value (exact beside it when an expected count < 5); params.p_holm across prompts",
        ),
        ("D10_gof_significant_share", LOWER, PARITY, "share of prompts differing from their reference after Holm"),
        (
            "D11_amplification",
            LOWER,
            AMPLIFICATION,
            "TV(p, u) - TV(r, u); params.class amplified/reflected/mitigated (Fair Diffusion)",
        ),
        (
            "D11_amplified_share",
            LOWER,
            AMPLIFICATION,
            "share of prompts whose model is further from uniform than the reference",
        ),
        (
            "D11_reflected_share",
            NONE,
            AMPLIFICATION,
            "share of prompts within the tolerance of their reference, TV(p, r) < 0.04",
        ),
        (
            "D11_mitigated_share",
            NONE,
            AMPLIFICATION,
            "share of prompts whose model is closer to uniform than the reference",
        ),
    ],
)
_ENTRIES += _family(
    "bigbench",
    [
        ("D5_bigbench_implicit", HIGHER, BIGBENCH, "BIGbench implicit score (1 + cos(p, r))/2, weighted"),
        ("D6_bigbench_explicit", HIGHER, BIGBENCH, "BIGbench explicit score n_v/N for the requested value"),
        ("D7_bigbench_eta", NONE, BIGBENCH, "BIGbench manifestation factor eta over contrast pairs"),
    ],
)
_ENTRIES += _family(
    "hallucination",
    [
        ("H1_hallucination", LOWER, TBYB, "TBYB Jaccard hallucination 1 - |I & O|/|I | O| (prompt vs caption objects)"),
        ("H1_added", LOWER, TBYB, "TBYB H_P = |O \\ I|/|O|, share of caption objects not in the prompt"),
        ("H1_missing", LOWER, TBYB, "TBYB H_N = |I \\ O|/|I|, share of prompt objects missing from the caption"),
        ("H2_miss_rate", LOWER, TBYB, "TBYB generative miss-rate: CLIP softmax over [prompt, ' '] misses the prompt"),
        ("H3_distribution_bias", LOWER, TBYB, "TBYB B_D over sorted, min-max-normalised added-object counts"),
        ("H3_distribution_bias_norm", LOWER, TBYB, "B_D / (K - 1), K = distinct added objects"),
        ("H4_miss_rate", LOWER, None, "requested-attribute miss rate 1 - n_v/N for prompts stating value v"),
        ("H4_unknown_rate", LOWER, None, "unknown rate U/(N + U) beside H4"),
        (
            "H4_realisation",
            NONE,
            None,
            "realisation matrix M[a, k] = P(judged k | requested a); params.requested/label",
        ),
        ("H5_count_mismatch", LOWER, None, "share of images whose person count differs from the prompt's"),
        (
            "H6_overcorrection",
            LOWER,
            OVERKILL,
            "share not matching a context-fixed attribute (meta fixed_<attr>)",
        ),
    ],
)
_ENTRIES += _family(
    "judge_validity",
    [
        ("J1_cohen_kappa", HIGHER, COHEN, "Cohen's kappa of two judges with the same declared labels"),
        ("J1_raw_agreement", HIGHER, None, "raw agreement of two judges (share of images labelled alike)"),
        (
            "J1_fleiss_kappa",
            HIGHER,
            FLEISS,
            "Fleiss' kappa of three or more judges with the same declared labels",
        ),
        ("J2_unknown_rate", LOWER, None, "abstention: unknown rate per judge, attribute, model (and prompt)"),
        (
            "J2_failure_rate",
            LOWER,
            None,
            "share of images a judge could not answer, per failure kind it recorded (params.error)",
        ),
        (
            "J2_excluded_rate",
            LOWER,
            None,
            "share of images whose label a scheme mapping excluded (no counterpart in the target)",
        ),
        (
            "J3_corrected_share",
            NONE,
            CLEAM,
            "judge-error-corrected share project_simplex(solve(C^T, p)); params.label",
        ),
    ],
)
_ENTRIES += _family(
    "judge_fairness",
    [
        ("J4_acc", HIGHER, MJ_BENCH, "MJ-Bench ACC x100: share of variant pairs whose scores differ by <= 0.1"),
        ("J4_nds", HIGHER, MJ_BENCH, "MJ-Bench NDS x100: 1 - sigma/mu of the scores of a content item's variants"),
        ("J4_ges", HIGHER, MJ_BENCH, "MJ-Bench GES x100: 1 - Gini of the scores of a content item's variants"),
    ],
)


def _build() -> Registry[MetricInfo]:
    reg: Registry[MetricInfo] = Registry("metric")
    for info in _ENTRIES:
        reg.register(info.id, info)
    return reg


METRICS: Registry[MetricInfo] = _build()
"""Metric id -> its ``MetricInfo`` (built-in metrics; ``get`` suggests close names)."""


def family_metrics(family: str) -> tuple[MetricInfo, ...]:
    """The catalog entries of one built-in family, in catalog order."""
    return tuple(info for info in _ENTRIES if info.family == family)


def headline_metrics() -> list[str]:
    """Ids of the metrics the report shows by default, sorted."""
    return sorted(name for name in METRICS.names() if METRICS.get(name).headline)
