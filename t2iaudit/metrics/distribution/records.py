"""The distribution family's records: one count group's values and intervals as ``MetricValue``s.

Per prompt, shares (and D10's share minus the reference) get Wilson (or Jeffreys) intervals and
D8 maps the Wilson interval of ``n_a / (n_a + n_b)``; every other per-prompt interval is the
bias-aware one (``bias_aware``), with the bias-corrected estimate in ``params.bias_corrected``.
Aggregates are the mean over prompts (the context-free severity pools the counts); a share's
aggregate interval is the hull of its bootstrap interval and the Wilson interval of the pooled
counts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from t2iaudit.metrics import stats
from t2iaudit.metrics.distribution.bias_aware import METHOD
from t2iaudit.metrics.distribution.evaluate import CONTEXT_FREE, LINEAR, VECTOR, Evaluated, cell_n
from t2iaudit.types import MetricValue

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions

COVERAGE = "simulated: >= 0.90 in every cell of benchmarks/bench_coverage.py (docs/metrics.md)"


def _params_for(ref: str, metric: str, options: MetricsOptions) -> dict[str, Any]:
    p: dict[str, Any] = {"confidence": options.confidence, "unknown_in_denominator": False}
    if metric == "share":
        p["unknown_in_denominator"] = options.unknown_in_denominator
    if metric == "D3_skin_tone_imbalance":
        p["unknown_in_denominator"] = options.skin_tone_unknown_in_denominator
    if metric == "D9_kl":
        p["eps"] = options.kl_eps
    if ref:
        p["reference"] = ref
    return p


def _noise_method(options: MetricsOptions) -> str:
    if options.estimand == "prompt_population":
        return "Student t over prompts"
    return "bootstrap of images within prompts at Jeffreys means"


def records(ev: Evaluated, options: MetricsOptions) -> list[MetricValue]:
    """Per-prompt and aggregate values of one evaluated count group (D10 tests and D11 classes
    are ``against_reference.reference_values``)."""
    method = {
        "interval": METHOD,
        "estimand": options.estimand,
        "resamples": options.bootstrap_resamples,
        "seed": options.seed,
        "coverage": COVERAGE,
    }
    return _per_prompt(ev, method, options) + _aggregates(ev, method, options)


def _per_prompt(ev: Evaluated, method: dict[str, Any], options: MetricsOptions) -> list[MetricValue]:
    group, counts, conf = ev.group, ev.group.counts, options.confidence
    base_scope = {"model_id": group.model_id, "judge_id": group.judge_id}
    unknown = counts[:, -1]
    out: list[MetricValue] = []
    for (ref, metric), values in ev.point.items():
        mask = ev.masks[ref]
        n_cell = cell_n(metric, counts, ev.roles, options)
        # Per prompt: Wilson/Jeffreys for proportions, else the bias-aware interval.
        corrected = None
        if metric == "D11_amplification":
            continue  # per prompt with its class: against_reference.reference_values
        if metric in VECTOR:  # a share, or a share minus the reference: Wilson (shifted)
            lo, hi = stats.proportion_interval(counts[:, :-1], n_cell[:, None], options.interval, conf)
            if metric == "D10_spd":
                lo, hi = lo - ev.refs[ref], hi - ev.refs[ref]
            extra: dict[str, Any] = {"interval": options.interval}
        elif metric == "D8_signed_imbalance":
            a, _ = ev.roles.signed_pair() or (0, 0)
            lo, hi = stats.proportion_interval(counts[:, a], n_cell, options.interval, conf)
            lo, hi, extra = 2 * lo - 1, 2 * hi - 1, {"interval": options.interval}
        elif ev.intervals is not None and (ref, metric) in ev.intervals.prompt:
            (lo, hi), extra = ev.intervals.prompt[ref, metric], {k: v for k, v in method.items() if k != "estimand"}
            lo, hi, corrected = lo[:, 0], hi[:, 0], ev.intervals.prompt_corrected[ref, metric][:, 0]
        else:
            lo = hi = np.full(values.shape, np.nan)
            extra = {"interval": None}
        common = {**_params_for(ref, metric, options), **extra}
        # Python numbers once per array (a numpy scalar per value is slow at a million rows).
        values_, lo_, hi_, n_, u_ = (np.asarray(x).tolist() for x in (values, lo, hi, n_cell, unknown))
        corrected_ = None if corrected is None else corrected.tolist()
        for j in np.flatnonzero(mask).tolist():
            scope = {**base_scope, "prompt_id": group.prompt_ids[j]}
            params = dict(common)
            if ref == "prompt":
                params["reference_key"] = ev.prompt_refs.get(group.prompt_ids[j])
            if corrected_ is not None and math.isfinite(corrected_[j]):
                params["bias_corrected"] = corrected_[j]
            if metric not in VECTOR:
                out.append(_value(metric, group.attribute, scope, values_[j], lo_[j], hi_[j], n_[j], u_[j], params))
                continue
            for k, label in enumerate(group.labels):
                label_params = {**params, "label": label}
                cell = (values_[j][k], lo_[j][k], hi_[j][k], n_[j], u_[j])
                out.append(_value(metric, group.attribute, scope, *cell, label_params))
    return out


def _aggregates(ev: Evaluated, method: dict[str, Any], options: MetricsOptions) -> list[MetricValue]:
    group, counts = ev.group, ev.group.counts
    base_scope = {"model_id": group.model_id, "judge_id": group.judge_id}
    unknown = counts[:, -1]
    noise_only = {**method, "interval": _noise_method(options)}
    out: list[MetricValue] = []
    for (ref, metric), agg in ev.aggregate.items():
        mask = ev.masks[ref]
        n_cell = cell_n(metric if metric != CONTEXT_FREE else "", counts, ev.roles, options)[mask].sum()
        params = {
            **_params_for(ref, metric, options),
            **(noise_only if metric in LINEAR else method),
            "prompts": int(mask.sum()),
        }
        params["aggregate"] = "pooled counts" if metric == CONTEXT_FREE else "mean over prompts"
        n_unknown = int(unknown[mask].sum())
        value = np.atleast_1d(agg)
        if ev.intervals is None or (ref, metric) not in ev.intervals.aggregate:
            lo = hi = np.full(value.shape, np.nan)
            params.update({"interval": None, "coverage": None})
        else:
            lo, hi = (np.atleast_1d(x) for x in ev.intervals.aggregate[ref, metric])
            if metric not in LINEAR:
                params["bias_corrected"] = stats.to_float(np.atleast_1d(ev.intervals.corrected[ref, metric])[0])
        if metric not in VECTOR:
            out.append(_value(metric, group.attribute, base_scope, value[0], lo[0], hi[0], n_cell, n_unknown, params))
            continue
        # Near 0 or 1 a bootstrap of a mean of proportions is too short; the Wilson interval of
        # the pooled counts is not (it treats images as independent). Report the hull.
        w_lo, w_hi = stats.proportion_interval(
            counts[mask, :-1].sum(axis=0), n_cell, options.interval, options.confidence
        )
        if metric == "D10_spd":  # minus the mean reference of the prompts with a labelled image
            labelled = mask & (counts[:, :-1].sum(axis=1) > 0)
            shift = ev.refs[ref][labelled].mean(axis=0) if labelled.any() else np.nan
            w_lo, w_hi = w_lo - shift, w_hi - shift
        lo, hi = np.fmin(lo, w_lo), np.fmax(hi, w_hi)
        pooled = f"{options.interval} of pooled counts"
        params["interval"] = f"hull({params['interval']}, {pooled})" if params["interval"] else pooled
        for k, label in enumerate(group.labels):
            cell = (value[k], lo[k], hi[k], n_cell, n_unknown)
            out.append(_value(metric, group.attribute, base_scope, *cell, {**params, "label": label}))
    return out


def _value(
    metric: str,
    attribute: str,
    scope: dict[str, str],
    value: Any,
    lo: Any,
    hi: Any,
    n: Any,
    n_unknown: Any,
    params: dict[str, Any],
) -> MetricValue:
    v = _float(value)
    fields: dict[str, Any] = {
        "metric": metric,
        "attribute": attribute,
        "scope": scope,
        "value": v,
        "ci_low": None if v is None else _float(lo),
        "ci_high": None if v is None else _float(hi),
        "n": int(n),
        "n_unknown": int(n_unknown),
        "params": params,
    }
    if not _PLAIN_CONSTRUCT:
        return MetricValue.model_construct(**fields)
    # What model_construct does when every field is given, without its per-field loop (a
    # hundred thousand values per run; tests/metrics/test_distribution.py compares the two).
    record = MetricValue.__new__(MetricValue)
    _set(record, "__dict__", fields)
    _set(record, "__pydantic_fields_set__", set(_FIELDS))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


_FIELDS = tuple(MetricValue.model_fields)
_PLAIN_CONSTRUCT = (
    not MetricValue.__pydantic_post_init__
    and not MetricValue.__pydantic_root_model__
    and MetricValue.model_config.get("extra") != "allow"
    and _FIELDS == ("metric", "attribute", "scope", "value", "ci_low", "ci_high", "n", "n_unknown", "params")
)
"""Whether ``_value`` may set a MetricValue's attributes itself (else ``model_construct``)."""
_set = object.__setattr__


def _float(x: Any) -> float | None:
    """``stats.to_float`` with a fast path for Python floats."""
    if type(x) is float:
        return x if math.isfinite(x) else None
    return stats.to_float(x)
