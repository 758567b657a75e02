"""The distribution family's cells: count groups -> per-prompt and aggregate metric values.

For each (model, judge, protected attribute) the per-prompt label counts form a ``(P, K + 1)``
array (last column: unknown). Every metric of ``distribution.py`` is evaluated on it at once.
Aggregates are the mean over prompts (prompts with no labelled image are left out), except
OpenBias' context-free severity, which pools the counts. Shares use Wilson (or Jeffreys)
intervals per prompt; D8 per prompt maps the Wilson interval of ``n_a / (n_a + n_b)``. Every
other interval, and every aggregate interval, is bias-aware (``bias_aware``): it covers the
population value over the audited prompts (or, with ``estimand: prompt_population``, over the
prompt population), contains the reported plug-in value, and the bias-corrected estimate goes
in ``params.bias_corrected``.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from t2iaudit.metrics import bias_aware, stats
from t2iaudit.metrics import distribution as dist
from t2iaudit.metrics.against_reference import reference_values
from t2iaudit.metrics.table import joint_frame, label_counts, reference_applies
from t2iaudit.types import MetricValue

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import JudgementTable, LabelCounts

REFERENCE_FREE = ("share", "D1_mad", "D2_gender_imbalance", "D3_skin_tone_imbalance")
REFERENCE_FREE += ("D4_severity_context_aware", "D8_signed_imbalance", "D9_entropy")
REFERENCE_FREE += ("D9_pairwise_gap",)
AGAINST_REFERENCE = ("D9_tv", "D9_kl", "D9_max_dev", "D9_fd", "D9_cosine")
CONTEXT_FREE = "D4_severity_context_free"


def _num(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def group_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator for one cell, derived from the audit seed and the cell's keys (stable)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


@dataclass(frozen=True)
class _Roles:
    """Column indices of the labels D2, D3 and D8 need (None: not applicable)."""

    female: int | None
    male: int | None
    young: int | None
    old: int | None
    skin_tone: bool

    @classmethod
    def of(cls, attribute: str, labels: list[str], options: MetricsOptions) -> _Roles:
        roles, base = options.roles, attribute.split(".")[0]

        def idx(attr: str, label: str) -> int | None:
            return labels.index(label) if base == attr and label in labels else None

        return cls(
            female=idx(roles.gender, roles.female),
            male=idx(roles.gender, roles.male),
            young=idx(roles.age, roles.young),
            old=idx(roles.age, roles.old),
            skin_tone=base == roles.skin_tone,
        )


def _evaluate(
    counts: np.ndarray, refs: dict[str, np.ndarray], roles: _Roles, options: MetricsOptions
) -> dict[tuple[str, str], np.ndarray]:
    """All wanted metrics on counts ``(..., P, K+1)``; keys ``(reference or "", metric)``."""
    n, u = counts[..., :-1], counts[..., -1]
    p = dist.proportions(n)
    out: dict[tuple[str, str], np.ndarray] = {}
    want = options.wants
    if want("share"):
        out["", "share"] = dist.proportions(counts)[..., :-1] if options.unknown_in_denominator else p
    if n.shape[-1] >= 2:
        if want("D1_mad"):
            out["", "D1_mad"] = dist.mad(p)
        if roles.female is not None and want("D2_gender_imbalance"):
            out["", "D2_gender_imbalance"] = dist.gender_imbalance(p[..., roles.female])
        if roles.skin_tone and want("D3_skin_tone_imbalance"):
            in_denominator = options.skin_tone_unknown_in_denominator
            out["", "D3_skin_tone_imbalance"] = dist.skin_tone_imbalance(n, u, in_denominator)
        if want("D4_severity_context_aware"):
            out["", "D4_severity_context_aware"] = dist.severity(p)
        pair = _signed_pair(roles)
        if pair and want("D8_signed_imbalance"):
            out["", "D8_signed_imbalance"] = dist.signed_imbalance(n[..., pair[0]], n[..., pair[1]])
        if want("D9_entropy"):
            out["", "D9_entropy"] = dist.normalized_entropy(p)
        if want("D9_pairwise_gap"):
            out["", "D9_pairwise_gap"] = dist.pairwise_gap(p)
    for name, r in refs.items():
        fns = {
            "D9_tv": dist.total_variation,
            "D9_kl": lambda p, r: dist.kl_divergence(p, r, options.kl_eps),
            "D9_max_dev": dist.max_deviation,
            "D9_fd": dist.fairness_discrepancy,
            "D9_cosine": dist.cosine,
        }
        out.update({(name, m): fn(p, r) for m, fn in fns.items() if want(m)})
        if name == "uniform":
            continue
        if want("D10_spd"):
            out[name, "D10_spd"] = p - r
        if any(want(m) for m in AMPLIFICATION):  # the class needs TV(p, r) too
            u = np.full(p.shape[-1], 1.0 / p.shape[-1])
            out[name, "D11_amplification"] = dist.total_variation(p, u) - dist.total_variation(r, u)
            out[name, "D9_tv"] = dist.total_variation(p, r)
    return out


AMPLIFICATION = ("D11_amplification", "D11_amplified_share", "D11_reflected_share", "D11_mitigated_share")
VECTOR = ("share", "D10_spd")
"""Metrics with one value per label (``params.label``)."""


def _signed_pair(roles: _Roles) -> tuple[int, int] | None:
    if roles.male is not None and roles.female is not None:
        return roles.male, roles.female
    if roles.young is not None and roles.old is not None:
        return roles.young, roles.old
    return None


def _cell_n(metric: str, counts: np.ndarray, roles: _Roles, options: MetricsOptions) -> np.ndarray:
    """Labels used per prompt (``n`` of MetricValue)."""
    n, u = counts[:, :-1].sum(axis=1), counts[:, -1]
    if metric == "share" and options.unknown_in_denominator:
        return n + u
    if metric == "D3_skin_tone_imbalance" and options.skin_tone_unknown_in_denominator:
        return n + u
    if metric == "D8_signed_imbalance":
        a, b = _signed_pair(roles) or (0, 0)
        return counts[:, a] + counts[:, b]
    return n


def _reference_matrix(
    references: dict[str, dict[str, dict[str, float]]],
    group: LabelCounts,
    name: str,
    prompt_refs: dict[str, str | None],
    options: MetricsOptions,
) -> np.ndarray:
    """``(P, K)`` reference rows of a group; NaN rows where the reference does not apply."""
    labels = group.labels

    def lookup(dists: dict[str, dict[str, float]] | None) -> np.ndarray:
        if not dists:
            return np.full(len(labels), np.nan)
        # A reference with mass on a label the judge cannot give is not renormalised away.
        if not reference_applies(dists, group.attribute, labels, group.judge_id, name):
            return np.full(len(labels), np.nan)
        if group.attribute in dists:
            vec = np.array([dists[group.attribute].get(x, 0.0) for x in labels], dtype=float)
        elif "*" in group.attribute and all(a in dists for a in group.attribute.split("*")):
            # Joint reference from marginals, assuming independence.
            a, b = group.attribute.split("*")
            vec = np.array([dists[a].get(x.split("*")[0], 0.0) * dists[b].get(x.split("*")[1], 0.0) for x in labels])
        else:
            return np.full(len(labels), np.nan)
        total = vec.sum()
        return vec / total if total > 0 else np.full(len(labels), np.nan)

    if name == "uniform":
        return np.full((len(group.prompt_ids), len(labels)), 1.0 / len(labels))
    if name == "prompt":
        rows = [lookup(references.get(prompt_refs.get(pid) or "")) for pid in group.prompt_ids]
        return np.array(rows, dtype=float).reshape(len(group.prompt_ids), len(labels))
    row = lookup(options.custom_references[name])
    return np.tile(row, (len(group.prompt_ids), 1))


def distribution_values(table: JudgementTable, options: MetricsOptions) -> list[MetricValue]:
    """Shares, D1-D4, D8, D9 per prompt and aggregated per (model, judge, attribute)."""
    frame = table.frame
    groups = label_counts(frame, table.label_sets, roles=table.roles)  # protected attributes only
    if options.intersections:
        rows, joint_sets = joint_frame(frame, table.label_sets, list(options.intersections), roles=table.roles)
        groups += label_counts(rows, joint_sets) if len(rows) else []
    if not groups:
        return []
    refs_col = frame[["prompt_id", "reference"]].drop_duplicates("prompt_id") if "reference" in frame else None
    prompt_refs = {} if refs_col is None else dict(zip(refs_col["prompt_id"], refs_col["reference"]))
    out: list[MetricValue] = []
    for group in groups:
        out.extend(group_values(group, options, table.references, prompt_refs))
    return out


def group_values(
    group: LabelCounts,
    options: MetricsOptions,
    references: dict[str, dict[str, dict[str, float]]] | None = None,
    prompt_refs: dict[str, str | None] | None = None,
) -> list[MetricValue]:
    """Every distribution metric of one count group, per prompt and aggregated.

    Args:
        group: Per-prompt label counts of one (model, judge, attribute).
        options: What to compute and how.
        references: Reference tables by key (``JudgementTable.references``).
        prompt_refs: Prompt id -> its reference key.
    """
    references, prompt_refs = references or {}, prompt_refs or {}
    counts, labels = group.counts, group.labels
    roles = _Roles.of(group.attribute, labels, options)
    refs = {name: _reference_matrix(references, group, name, prompt_refs, options) for name in options.references}
    refs = {k: v for k, v in refs.items() if np.isfinite(v).all(axis=1).any()} if len(labels) >= 2 else {}
    # Prompts a reference applies to; reference-free metrics use every prompt ("").
    masks = {"": np.ones(len(group.prompt_ids), dtype=bool)}
    masks.update({k: np.isfinite(v).all(axis=1) for k, v in refs.items()})
    evaluate = functools.partial(_evaluate, roles=roles, options=options)
    point = evaluate(counts, refs)
    agg_point = {
        k: bias_aware.nanmean(
            np.where(masks[k[0]][:, None] if v.ndim == 2 else masks[k[0]], v, np.nan), -2 if v.ndim == 2 else -1
        )
        for k, v in point.items()
    }
    pooled = None
    if options.wants(CONTEXT_FREE) and len(labels) >= 2:
        pooled = (CONTEXT_FREE, _pooled_severity)
        agg_point["", CONTEXT_FREE] = _pooled_severity(counts[:, :-1].sum(axis=0).astype(float))
    intervals = None
    if options.bootstrap_resamples:
        rng = group_rng(options.seed, group.model_id, group.judge_id, group.attribute)
        uniform = np.full((len(group.prompt_ids), len(labels)), 1.0 / len(labels))
        intervals = bias_aware.bias_aware_intervals(
            counts,
            refs,
            masks,
            evaluate,
            [uniform],
            _settings(options),
            rng,
            ranges=_ranges(len(labels)),
            linear=LINEAR,
            pooled=pooled,
        )
    out = _emit(group, counts, roles, masks, refs, point, agg_point, intervals, prompt_refs, options)
    return out + reference_values(group, counts, refs, masks, point, intervals, options, prompt_refs)


LINEAR = ("share", "D10_spd")
"""Metrics whose plug-in is unbiased (a mean of proportions): no bias band."""


def _pooled_severity(pooled: np.ndarray) -> np.ndarray:
    return dist.severity(dist.proportions(pooled))


def _settings(options: MetricsOptions) -> bias_aware.Settings:
    return bias_aware.Settings(
        confidence=options.confidence,
        resamples=options.bootstrap_resamples,
        estimand=options.estimand,
        per_prompt=options.prompt_bootstrap,
    )


def _ranges(k: int) -> dict[str, tuple[float, float]]:
    """Possible values of each metric with K labels (intervals are clipped to them)."""
    unit = (0.0, 1.0)
    severity = (-1e-8, 1.0)  # OpenBias' 1e-10 inside the entropy puts uniform a hair below 0
    return {
        "share": unit,
        "D1_mad": (0.0, 2.0 * (k - 1) / k**2),
        "D2_gender_imbalance": (0.0, 0.5),
        "D3_skin_tone_imbalance": unit,
        "D4_severity_context_aware": severity,
        CONTEXT_FREE: severity,
        "D8_signed_imbalance": (-1.0, 1.0),
        "D9_tv": unit,
        "D9_kl": (0.0, np.inf),
        "D9_entropy": unit,
        "D9_max_dev": unit,
        "D10_spd": (-1.0, 1.0),
        "D11_amplification": (-1.0, 1.0),
        "D9_fd": (0.0, np.sqrt(2.0)),
        "D9_pairwise_gap": unit,
        "D9_cosine": unit,
    }


def _emit(group, counts, roles, masks, refs, point, agg_point, intervals, prompt_refs, options):  # type: ignore[no-untyped-def]
    out: list[MetricValue] = []
    b, conf = options.bootstrap_resamples, options.confidence
    base_scope = {"model_id": group.model_id, "judge_id": group.judge_id}
    unknown = counts[:, -1]
    method = {
        "interval": bias_aware.METHOD,
        "estimand": options.estimand,
        "resamples": b,
        "seed": options.seed,
        "coverage": COVERAGE,
    }
    noise_only = {**method, "interval": _noise_method(options)}

    def params_for(ref: str, metric: str) -> dict[str, Any]:
        p: dict[str, Any] = {"confidence": conf, "unknown_in_denominator": False}
        if metric == "share":
            p["unknown_in_denominator"] = options.unknown_in_denominator
        if metric == "D3_skin_tone_imbalance":
            p["unknown_in_denominator"] = options.skin_tone_unknown_in_denominator
        if metric == "D9_kl":
            p["eps"] = options.kl_eps
        if ref:
            p["reference"] = ref
        return p

    for (ref, metric), values in point.items():
        mask = masks[ref]
        n_cell = _cell_n(metric, counts, roles, options)
        # Per prompt: Wilson/Jeffreys for proportions, else the bias-aware interval.
        corrected = None
        if metric == "D11_amplification":
            continue  # per prompt with its class: against_reference.reference_values
        if metric in VECTOR:  # a share, or a share minus the reference: Wilson (shifted)
            lo, hi = stats.proportion_interval(counts[:, :-1], n_cell[:, None], options.interval, conf)
            if metric == "D10_spd":
                lo, hi = lo - refs[ref], hi - refs[ref]
            extra: dict[str, Any] = {"interval": options.interval}
        elif metric == "D8_signed_imbalance":
            a, _ = _signed_pair(roles) or (0, 0)
            lo, hi = stats.proportion_interval(counts[:, a], n_cell, options.interval, conf)
            lo, hi, extra = 2 * lo - 1, 2 * hi - 1, {"interval": options.interval}
        elif intervals is not None and (ref, metric) in intervals.prompt:
            (lo, hi), extra = intervals.prompt[ref, metric], {k: v for k, v in method.items() if k != "estimand"}
            lo, hi, corrected = lo[:, 0], hi[:, 0], intervals.prompt_corrected[ref, metric][:, 0]
        else:
            lo = hi = np.full(values.shape, np.nan)
            extra = {"interval": None}
        for j in np.flatnonzero(mask):
            scope = {**base_scope, "prompt_id": group.prompt_ids[j]}
            params = {**params_for(ref, metric), **extra}
            if ref == "prompt":
                params["reference_key"] = prompt_refs.get(group.prompt_ids[j])
            if corrected is not None and np.isfinite(corrected[j]):
                params["bias_corrected"] = float(corrected[j])
            if metric not in VECTOR:
                out.append(
                    _value(metric, group.attribute, scope, values[j], lo[j], hi[j], n_cell[j], unknown[j], params)
                )
                continue
            for k, label in enumerate(group.labels):
                out.append(
                    _value(
                        metric,
                        group.attribute,
                        scope,
                        values[j, k],
                        lo[j, k],
                        hi[j, k],
                        n_cell[j],
                        unknown[j],
                        {**params, "label": label},
                    )
                )
    for (ref, metric), value in agg_point.items():
        mask = masks[ref]
        n_cell = _cell_n(metric if metric != CONTEXT_FREE else "", counts, roles, options)[mask].sum()
        params = {**params_for(ref, metric), **(noise_only if metric in LINEAR else method), "prompts": int(mask.sum())}
        params["aggregate"] = "pooled counts" if metric == CONTEXT_FREE else "mean over prompts"
        n_unknown = int(unknown[mask].sum())
        value = np.atleast_1d(value)
        if intervals is None or (ref, metric) not in intervals.aggregate:
            lo = hi = np.full(value.shape, np.nan)
            params.update({"interval": None, "coverage": None})
        else:
            lo, hi = (np.atleast_1d(x) for x in intervals.aggregate[ref, metric])
            if metric not in LINEAR:
                params["bias_corrected"] = _num(np.atleast_1d(intervals.corrected[ref, metric])[0])
        if metric not in VECTOR:
            out.append(_value(metric, group.attribute, base_scope, value[0], lo[0], hi[0], n_cell, n_unknown, params))
            continue
        # Near 0 or 1 a bootstrap of a mean of proportions is too short; the Wilson interval of
        # the pooled counts is not (it treats images as independent). Report the hull.
        w_lo, w_hi = stats.proportion_interval(counts[mask, :-1].sum(axis=0), n_cell, options.interval, conf)
        if metric == "D10_spd":  # minus the mean reference of the prompts with a labelled image
            labelled = mask & (counts[:, :-1].sum(axis=1) > 0)
            shift = refs[ref][labelled].mean(axis=0) if labelled.any() else np.nan
            w_lo, w_hi = w_lo - shift, w_hi - shift
        lo, hi = np.fmin(lo, w_lo), np.fmax(hi, w_hi)
        pooled = f"{options.interval} of pooled counts"
        params["interval"] = f"hull({params['interval']}, {pooled})" if params["interval"] else pooled
        for k, label in enumerate(group.labels):
            out.append(
                _value(
                    metric,
                    group.attribute,
                    base_scope,
                    value[k],
                    lo[k],
                    hi[k],
                    n_cell,
                    n_unknown,
                    {**params, "label": label},
                )
            )
    return out


COVERAGE = "simulated: >= 0.90 in every cell of benchmarks/bench_coverage.py (docs/metrics.md)"


def _noise_method(options: MetricsOptions) -> str:
    if options.estimand == "prompt_population":
        return "Student t over prompts"
    return "bootstrap of images within prompts at Jeffreys means"


def _value(metric, attribute, scope, value, lo, hi, n, n_unknown, params) -> MetricValue:  # type: ignore[no-untyped-def]
    v = _num(value)
    return MetricValue.model_construct(
        metric=metric,
        attribute=attribute,
        scope=scope,
        value=v,
        ci_low=None if v is None or lo is None else _num(lo),
        ci_high=None if v is None or hi is None else _num(hi),
        n=int(n),
        n_unknown=int(n_unknown),
        params=params,
    )
