"""The BIGbench family: D5 (implicit), D6 (explicit) and D7 (manifestation factor eta) with intervals.

Luo et al., "BIGbench: A Unified Benchmark for Social Bias in Text-to-Image Generative Models
Based on Multi-modal LLM" (arXiv:2407.15240; BiasIG, arXiv:2604.11934). Definitions as written
in METRICS.md; the published code's eta form ``p - r^2`` is used only with
``MetricsOptions.compat = ["bigbench-code"]`` (which also scores pairs without data 0.5, as
that code does; by default they are left out).

Intervals: the images of a prompt are resampled *jointly* for all attributes (the gender, race
and age of one image move together); the aggregate's resamples also draw prompts (D5, D6) or
contrast pairs (D7) with replacement, reusing each unit's image resample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from t2iaudit.metrics import catalog, stats
from t2iaudit.metrics.bigbench.inputs import excluded_images, load_pairs
from t2iaudit.metrics.bigbench.series import Series, eta_series, explicit_series, implicit_series
from t2iaudit.metrics.compute import MetricFamily
from t2iaudit.metrics.table import image_codes, is_categorical
from t2iaudit.types import MetricValue
from t2iaudit.vocabulary import EXCLUDED

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import ImageCodes, JudgementTable

CHUNK = 2_000_000
"""Image-code array elements per chunk of bootstrap resamples (bounds memory)."""


def bigbench_family(table: JudgementTable, options: MetricsOptions) -> list[MetricValue]:
    """D5, D6 and D7 per prompt (or pair) and per (model, judge), with bootstrap intervals."""
    roles = options.roles
    base_of = {roles.gender: "gender", roles.race: "race", roles.age: "age"}
    frame = table.frame
    if frame.empty:
        return []
    meta = frame.drop_duplicates("prompt_id").set_index("prompt_id")
    pairs = load_pairs(options) if options.wants("D7_bigbench_eta") else []
    relevant = {p for p, key in meta.get("reference", pd.Series(dtype=object)).items() if key in table.references}
    for col in [c for c in meta.columns if c.startswith("requested_")]:
        relevant |= set(meta.index[meta[col].notna()])
    relevant |= {pair[side]["prompt_id"] for pair in pairs for side in ("x", "y")}
    out: list[MetricValue] = []
    cols = ["image_id", "prompt_id", "attribute", "label"]
    frame = frame.loc[frame["prompt_id"].isin(relevant), ["model_id", "judge_id", *cols]]  # columns first: no full copy
    for (model, judge), rows in frame.groupby(["model_id", "judge_id"], sort=True):
        declared = table.label_sets.get(str(judge), {})
        labels = {
            a: v
            for a, v in declared.items()
            if a.split(".")[0] in base_of and is_categorical(v) and table.protected(str(judge), a)
        }
        if not labels:
            continue
        codes = image_codes(rows[cols], labels)
        implicit = implicit_series(codes, meta, table, base_of, options)
        # D6 counts an image a label mapping excluded (judged Latino_Hispanic for a prompt asking
        # for South Asian) as judged and not the requested value; D5, D7 compare distributions
        # over the target scheme's groups and leave it out.
        excluded = excluded_images(table, str(model), str(judge), labels, relevant)
        explicit_codes = codes
        if len(excluded):
            with_excluded = {a: [*v, EXCLUDED] if a in set(excluded["attribute"]) else v for a, v in labels.items()}
            explicit_codes = image_codes(pd.concat([rows[cols], excluded[cols]], ignore_index=True), with_excluded)
        explicit = explicit_series(explicit_codes, meta, options)
        etas = eta_series(codes, table, base_of, pairs, options) if pairs else []
        rng = stats.group_rng(options.seed, str(model), str(judge), "bigbench")
        scope = {"model_id": str(model), "judge_id": str(judge)}
        if explicit_codes is codes:
            out += _run(implicit + explicit + etas, codes, scope, options, rng)
        else:
            out += _run(implicit + etas, codes, scope, options, rng)
            out += _run(explicit, explicit_codes, scope, options, rng)
    return out


def _run(
    series: list[Series],
    codes: ImageCodes,
    scope: dict[str, str],
    options: MetricsOptions,
    rng: np.random.Generator,
) -> list[MetricValue]:
    """Point values, joint image bootstrap for unit intervals, unit resampling for aggregates."""
    if not series:
        return []
    counts = codes.counts()
    points = [s.values(counts) for s in series]
    b, conf = options.bootstrap_resamples, options.confidence
    samples: list[list[np.ndarray]] = [[] for _ in series]
    m, a = codes.codes.shape
    for size in stats.chunk_sizes(b, m * a, CHUNK):
        idx = stats.bootstrap_images(codes.image_prompt, size, rng)
        boot = codes.counts(codes.codes[idx])
        for i, s in enumerate(series):
            samples[i].append(s.values(boot))
    out: list[MetricValue] = []
    boot_params = {"interval": "bootstrap", "resamples": b, "seed": options.seed, "confidence": conf}
    for s, point, parts in zip(series, points, samples):
        unit_ci: dict[str, Any]
        if s.emit_units:
            if s.proportion is not None:
                lo, hi = stats.proportion_interval(*s.proportion, options.interval, conf)
                unit_ci = {"interval": options.interval, "confidence": conf}
            elif b:
                lo, hi = stats.percentile_interval(np.concatenate(parts), conf)
                unit_ci = {**boot_params, "bootstrap": "images within prompt"}
            else:
                lo = hi = np.full(len(s.units), np.nan)
                unit_ci = {"interval": None}
            for u, unit in enumerate(s.units):
                extra = s.unit_params[u] if s.unit_params else {}
                params = {**s.params, **extra, **unit_ci, "weight": float(s.weights[u])}
                params.pop("aggregate", None)
                out.append(_value(s, {**scope, s.unit: unit}, point[u], lo[u], hi[u], s.n[u], s.n_unknown[u], params))
        agg = stats.weighted_mean(point, s.weights)
        lo_hi: tuple[Any, Any] = (None, None)
        params = {**s.params, **s.agg_params, "units": len(s.units), "interval": None}
        if b:
            all_samples = np.concatenate(parts)
            if options.estimand == "prompt_population":  # units drawn too: generalise over prompts
                uidx = stats.resample_prompts(len(s.units), all_samples.shape[0], rng)
                means = stats.weighted_mean(np.take_along_axis(all_samples, uidx, axis=1), s.weights[uidx])
                how = f"stratified: {s.unit}s, then images within prompts"
            else:  # the audited prompts are fixed: their images are the random part
                means = stats.weighted_mean(all_samples, np.broadcast_to(s.weights, all_samples.shape))
                how = "images within prompts (prompts fixed)"
            lo_hi = stats.percentile_interval(means, conf)
            params.update({**boot_params, "bootstrap": how, "estimand": options.estimand, "coverage": "not shown"})
        out.append(_value(s, {**scope, **s.scope}, agg, lo_hi[0], lo_hi[1], s.n.sum(), s.n_unknown.sum(), params))
    return out


def _value(
    s: Series, scope: dict[str, str], value: Any, lo: Any, hi: Any, n: Any, n_unknown: Any, params: dict[str, Any]
) -> MetricValue:
    v = stats.to_float(value)
    low, high = stats.contain(v, stats.to_float(lo), stats.to_float(hi))
    return MetricValue.model_construct(
        metric=s.metric,
        attribute=s.attribute,
        scope=scope,
        value=v,
        ci_low=None if v is None else low,
        ci_high=None if v is None else high,
        n=int(n),
        n_unknown=int(n_unknown),
        params={**params, "unknown_in_denominator": False},
    )


FAMILY = MetricFamily(compute=bigbench_family, metrics=catalog.family_metrics("bigbench"))
"""D5-D7 (registered as ``bigbench`` in ``t2iaudit.metrics.compute``); no options."""
