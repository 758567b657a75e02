"""Judge-validity metrics J1-J3: agreement, abstention, judge-error-corrected distributions.

- J1 ``J1_cohen_kappa`` / ``J1_raw_agreement`` for every pair of judges that answer the same
  attribute on the same images (Cohen 1960): ``kappa = (p_o - p_e) / (1 - p_e)`` with
  ``p_o`` the share of images on which they agree and ``p_e = sum_k a_k b_k`` from their label
  marginals. ``J1_fleiss_kappa`` for three or more judges (Fleiss 1971): with m judges and
  ``n_ik`` judges putting image i in class k, ``P_i = (sum_k n_ik^2 - m) / (m (m - 1))``,
  ``p_k = sum_i n_ik / (N m)``, ``kappa = (mean P_i - sum p_k^2) / (1 - sum p_k^2)``.
  Only judges whose declared label sets are equal *as sets of names* are compared (a
  two-class and a three-class gender judge measure different things; map labels first, e.g.
  with ``import-labels --map``). Images where any compared judge answered ``unknown`` are
  left out and counted in ``n_unknown``. Intervals: Wilson for raw agreement, a bootstrap
  over images (stratified by prompt) for the kappas. Kappa is None when ``p_e = 1`` (both
  judges always gave the same single label).
- J2 ``J2_unknown_rate``: ``U / (N + U)`` per judge, attribute and model (and prompt), with
  a Wilson interval; ``n`` counts every image here (unknowns in the denominator).
  ``J2_excluded_rate``: the share of images a label mapping excluded (``exclusion_metrics``).
- J3 (CLEAM-style correction, Teo et al. 2023): with ``C[j, k] = P(judged k | true j)``
  measured on a labelled calibration set (:func:`load_calibration`), the corrected shares are
  ``p_true = project_simplex(solve(C^T, p))``, the Euclidean projection onto the simplex.
  See ``t2iaudit.metrics.calibration`` for the estimator and its bootstrap interval.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from t2iaudit.metrics import stats
from t2iaudit.metrics.adherence import proportion
from t2iaudit.metrics.table import is_categorical
from t2iaudit.types import UNKNOWN, MetricValue

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import JudgementTable


def cohen_kappa(a: np.ndarray, b: np.ndarray, labels: list[str]) -> tuple[float | None, float]:
    """Cohen's kappa and raw agreement of two label arrays over ``labels`` (Cohen 1960).

    Returns:
        ``(kappa, p_o)``; kappa is None when ``p_e = 1`` and NaN-free otherwise.
    """
    kappa = _cohen_batch(_onehot(a, labels)[None], _onehot(b, labels)[None], np.ones((1, len(a))))
    p_o = float(np.mean(np.asarray(a) == np.asarray(b))) if len(a) else float("nan")
    k = float(kappa[0])
    return (None if not np.isfinite(k) else k), p_o


def fleiss_kappa(ratings: np.ndarray, labels: list[str]) -> float | None:
    """Fleiss' kappa of an ``(N images, m judges)`` array of labels (Fleiss 1971)."""
    counts = np.stack([(np.asarray(ratings) == lab).sum(axis=1) for lab in labels], axis=1)
    k = float(_fleiss_batch(counts[None].astype(float), np.ones((1, counts.shape[0])))[0])
    return None if not np.isfinite(k) else k


def _onehot(x: np.ndarray, labels: list[str]) -> np.ndarray:
    return (np.asarray(x, dtype=object)[:, None] == np.asarray(labels, dtype=object)[None, :]).astype(float)


def _cohen_batch(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Kappa per resample: ``a``, ``b`` one-hot ``(1, n, K)``, weights ``w`` ``(B, n)``."""
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_o = (w * (a * b).sum(axis=2)).sum(axis=1) / total
        pa = np.einsum("bn,nk->bk", w, a[0]) / total[:, None]
        pb = np.einsum("bn,nk->bk", w, b[0]) / total[:, None]
        p_e = (pa * pb).sum(axis=1)
        kappa = (p_o - p_e) / (1.0 - p_e)
    return np.where(np.isclose(p_e, 1.0), np.nan, kappa)


def _fleiss_batch(counts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Fleiss' kappa per resample: ``counts`` ``(1, N, K)`` raters per class, weights ``(B, N)``."""
    c = counts[0]
    m = c.sum(axis=1)[0]
    p_i = ((c**2).sum(axis=1) - m) / (m * (m - 1))
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bar = (w @ p_i) / total
        p_k = (w @ c) / (total[:, None] * m)
        p_e = (p_k**2).sum(axis=1)
        kappa = (p_bar - p_e) / (1.0 - p_e)
    return np.where(np.isclose(p_e, 1.0), np.nan, kappa)


class JudgeValidityOptions(BaseModel):
    """``metrics.family_options.judge_validity``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_prompt: bool = True
    """Also report J2 abstention per prompt."""
    per_model: bool = True
    """Also report J1 agreement per model (besides all models pooled)."""
    calibration: dict[str, str] = {}
    """J3: judge id (or judge name) -> calibration CSV with true and judged labels."""


def judge_validity_family(table: JudgementTable, options: MetricsOptions) -> list[MetricValue]:
    """J1 agreement, J2 abstention and (with calibration files) J3 corrected shares."""
    from t2iaudit.metrics.calibration import corrected_metrics

    opts = JudgeValidityOptions.model_validate(options.family_options.get("judge_validity", {}))
    out = agreement_metrics(table, options, per_model=opts.per_model)
    out += abstention_metrics(table.frame, options, per_prompt=opts.per_prompt)
    out += exclusion_metrics(table, options, per_prompt=opts.per_prompt)
    out += corrected_metrics(table, options, {**table.calibration, **opts.calibration})
    return out


def abstention_metrics(frame: pd.DataFrame, options: MetricsOptions, *, per_prompt: bool = True) -> list[MetricValue]:
    """J2: unknown rate per judge, attribute, model (and prompt); never silently dropped."""
    out = []
    keys = ["judge_id", "attribute", "model_id"] + (["prompt_id"] if per_prompt else [])
    unknown = (frame["label"] == UNKNOWN).rename("_u")
    for level in [keys[:3], keys] if per_prompt else [keys]:
        grouped = unknown.groupby([frame[k] for k in level], sort=True).agg(["sum", "size"])
        for key, row in grouped.iterrows():
            scope = {k: str(v) for k, v in zip(level, key) if k != "attribute"}
            u, n = int(row["sum"]), int(row["size"])
            out.append(proportion("J2_unknown_rate", str(key[1]), scope, u, n, u, options, unknown_in_denominator=True))
    if "error" in frame.columns:  # why the judge abstained, when it says (API judges)
        level = keys[:3]
        errors = frame["error"].notna() & (frame["error"] != "")
        sizes = frame.groupby(level, sort=True).size()
        failed = frame[errors].groupby([*level, "error"], sort=True).size()
        for (*key, error), k in failed.items():
            n, u = int(sizes[tuple(key)]), int(k)
            scope = {lvl: str(v) for lvl, v in zip(level, key) if lvl != "attribute"}
            out.append(proportion("J2_failure_rate", str(key[1]), scope, u, n, u, options,
                                  unknown_in_denominator=True, error=str(error)))  # fmt: skip
    return out


def exclusion_metrics(table: JudgementTable, options: MetricsOptions, *, per_prompt: bool = True) -> list[MetricValue]:
    """J2 ``J2_excluded_rate``: share of a judge's images whose label a mapping excluded.

    Per judge, target attribute and model (and prompt): ``k`` images excluded (their label has
    no counterpart in the target scheme, e.g. FairFace's ``Middle Eastern`` for BIGbench's
    ``race``), ``n`` every image judged for the source attribute (unknowns in the denominator).
    ``params.source_attribute`` names the judge's attribute, ``params.labels`` counts the
    excluded labels.
    """
    ex = table.excluded
    if ex.empty:
        return []
    out = []
    keys = ["judge_id", "attribute", "model_id"]
    frame = table.frame
    mapped = frame[frame["mapped_from"].notna()] if "mapped_from" in frame.columns else frame.iloc[:0]
    for level in [keys, [*keys, "prompt_id"]] if per_prompt else [keys]:
        kept = mapped.groupby(level, sort=True).size()
        unknown = mapped[mapped["label"] == UNKNOWN].groupby(level, sort=True).size()
        for key, cell in ex.groupby(level, sort=True):
            k, u = len(cell), int(unknown.get(key, 0))
            n = k + int(kept.get(key, 0))
            scope = {lvl: str(v) for lvl, v in zip(level, key) if lvl != "attribute"}
            labels = {str(a): int(b) for a, b in cell["label"].value_counts().sort_index().items()}
            source = str(cell["source_attribute"].iloc[0])
            extra = {"unknown_in_denominator": True, "source_attribute": source, "labels": labels}
            out.append(proportion("J2_excluded_rate", str(key[1]), scope, k, n, u, options, **extra))
    return out


def _wide(frame: pd.DataFrame, attribute: str, judges: list[str]) -> pd.DataFrame:
    """One row per image judged by all ``judges`` on ``attribute``; one label column per judge."""
    rows = frame[(frame["attribute"] == attribute) & frame["judge_id"].isin(judges)]
    wide = rows.pivot_table(index=["image_id", "model_id", "prompt_id"], columns="judge_id", values="label",
                            aggfunc="first")  # fmt: skip
    return wide.dropna(subset=judges).reset_index()


def agreement_metrics(table: JudgementTable, options: MetricsOptions, *, per_model: bool = True) -> list[MetricValue]:
    """J1: Cohen's kappa and raw agreement for judge pairs, Fleiss' kappa for 3+ judges."""
    frame = table.frame
    out: list[MetricValue] = []
    rng = np.random.default_rng(options.seed)
    for attribute in sorted(frame["attribute"].unique()):
        by_set: dict[frozenset[str], list[str]] = {}
        for judge in sorted(frame.loc[frame["attribute"] == attribute, "judge_id"].unique()):
            labels = table.label_sets.get(judge, {}).get(attribute)
            if labels and len(labels) > 1 and is_categorical(labels):  # K = 1 (scores): nothing to agree on
                by_set.setdefault(frozenset(labels), []).append(judge)
        for label_set, judges in by_set.items():
            labels = sorted(label_set)
            groups = [list(p) for p in combinations(judges, 2)] + ([judges] if len(judges) >= 3 else [])
            for group in groups:
                wide = _wide(frame, attribute, group)
                cells = [({}, wide)]
                if per_model:
                    cells += [({"model_id": str(m)}, sub) for m, sub in wide.groupby("model_id", sort=True)]
                for scope, cell in cells:
                    out += _agreement_cell(cell, group, labels, attribute, scope, options, rng)
    return out


def _agreement_cell(
    cell: pd.DataFrame, judges: list[str], labels: list[str], attribute: str, scope: dict[str, str],
    options: MetricsOptions, rng: np.random.Generator,
) -> list[MetricValue]:  # fmt: skip
    ratings = cell[judges].to_numpy(dtype=object)
    valid = ~(ratings == UNKNOWN).any(axis=1) if len(cell) else np.zeros(0, dtype=bool)
    n_unknown = int((~valid).sum())
    ratings, strata = ratings[valid], cell["prompt_id"].to_numpy()[valid]
    n = len(ratings)
    boot = options.bootstrap_resamples if n > 1 else 0
    # Kappa depends on the images only through how often each rating pattern occurs, so the
    # stratified bootstrap runs on per-prompt pattern counts (P x patterns), not on images.
    patterns, code = np.unique(ratings.astype(str), axis=0, return_inverse=True) if n else (ratings, np.zeros(0, int))
    population = options.estimand == "prompt_population"
    w = (
        _pattern_bootstrap(strata, code.ravel(), len(patterns), boot, rng, resample_prompts=population)
        if boot
        else np.zeros((0, len(patterns)))
    )
    params: dict[str, Any] = {
        "labels": labels,
        "interval": "bootstrap: images within prompts" + (", prompts first" if population else ""),
        "estimand": options.estimand,
        "coverage": "not shown",
        "resamples": boot,
        "seed": options.seed,
    }
    params["unknown_in_denominator"] = False
    if len(judges) == 2:
        scope = {**scope, "judge_id": judges[0], "judge_id_b": judges[1]}
        a, b = _onehot(patterns[:, 0], labels), _onehot(patterns[:, 1], labels)
        freq = np.bincount(code.ravel(), minlength=len(patterns))[None].astype(float)
        kappa = _cohen_batch(a[None], b[None], freq)[0] if n else np.nan
        low = high = None
        if boot:
            low, high = map(_num, stats.percentile_interval(_cohen_batch(a[None], b[None], w), options.confidence))
            low, high = stats.contain(_num(kappa), low, high)
        agree = int((ratings[:, 0] == ratings[:, 1]).sum()) if n else 0
        return [
            MetricValue(metric="J1_cohen_kappa", attribute=attribute, scope=scope, value=_num(kappa),
                        ci_low=low, ci_high=high, n=n, n_unknown=n_unknown,
                        params={**params, "source": "Cohen 1960"}),
            proportion("J1_raw_agreement", attribute, scope, agree, n, n_unknown, options, labels=labels),
        ]  # fmt: skip
    counts = np.stack([(patterns == lab).sum(axis=1) for lab in labels], axis=1).astype(float)
    freq = np.bincount(code.ravel(), minlength=len(patterns))[None].astype(float)
    kappa = _fleiss_batch(counts[None], freq)[0] if n else np.nan
    low = high = None
    if boot:
        low, high = map(_num, stats.percentile_interval(_fleiss_batch(counts[None], w), options.confidence))
        low, high = stats.contain(_num(kappa), low, high)
    scope = {**scope, "judge_ids": ",".join(judges)}
    return [
        MetricValue(metric="J1_fleiss_kappa", attribute=attribute, scope=scope, value=_num(kappa), ci_low=low,
                    ci_high=high, n=n, n_unknown=n_unknown,
                    params={**params, "judges": len(judges), "source": "Fleiss 1971"}),
    ]  # fmt: skip


def _pattern_bootstrap(
    strata: np.ndarray,
    code: np.ndarray,
    n_patterns: int,
    resamples: int,
    rng: np.random.Generator,
    *,
    resample_prompts: bool,
) -> np.ndarray:
    """``(B, patterns)`` pattern totals of a stratified bootstrap: images within prompts, and with
    ``resample_prompts`` (the ``prompt_population`` estimand) the prompts first."""
    prompts, index = np.unique(strata, return_inverse=True)
    counts = np.zeros((len(prompts), n_patterns), dtype=np.int64)
    np.add.at(counts, (index.ravel(), code), 1)
    step = max(1, 2_000_000 // max(1, len(prompts) * n_patterns))
    out = []
    for start in range(0, resamples, step):
        size = min(step, resamples - start)
        drawn = (
            stats.resample_prompts(len(prompts), size, rng)
            if resample_prompts
            else np.broadcast_to(np.arange(len(prompts)), (size, len(prompts)))
        )
        out.append(stats.bootstrap_counts(counts, size, rng, prompt_index=drawn).sum(axis=1))
    return np.concatenate(out).astype(float)


def _num(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
