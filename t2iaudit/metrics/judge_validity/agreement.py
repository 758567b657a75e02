"""J1: agreement between judges (Cohen's and Fleiss' kappa, raw agreement).

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

J2 (abstention) is in ``abstention``, J3 (judge-error-corrected shares) in ``correction``, J4
(fairness of scoring judges) in ``fairness``; ``family.judge_validity_family`` runs J1-J3.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from t2iaudit.metrics import stats
from t2iaudit.metrics.table import is_categorical
from t2iaudit.metrics.values import proportion
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


def _wide(frame: pd.DataFrame, attribute: str, judges: list[str]) -> pd.DataFrame:
    """One row per image judged by all ``judges`` on ``attribute``; one label column per judge."""
    rows = frame[(frame["attribute"] == attribute) & frame["judge_id"].isin(judges)]
    index = ["image_id", "model_id", "prompt_id"]
    wide = rows.pivot_table(index=index, columns="judge_id", values="label", aggfunc="first")
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
                cells: list[tuple[dict[str, str], pd.DataFrame]] = [({}, wide)]
                if per_model:
                    cells += [({"model_id": str(m)}, sub) for m, sub in wide.groupby("model_id", sort=True)]
                for scope, cell in cells:
                    out += _agreement_cell(cell, group, labels, attribute, scope, options, rng)
    return out


def _agreement_cell(
    cell: pd.DataFrame,
    judges: list[str],
    labels: list[str],
    attribute: str,
    scope: dict[str, str],
    options: MetricsOptions,
    rng: np.random.Generator,
) -> list[MetricValue]:
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
        stats.bootstrap_code_totals(strata, code.ravel(), len(patterns), boot, rng, resample_strata=population)
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
    freq = np.bincount(code.ravel(), minlength=len(patterns))[None].astype(float)

    def kappa_value(metric: str, kappa_of: Any, cell_scope: dict[str, str], extra: dict[str, Any]) -> MetricValue:
        """``kappa_of(pattern weights (R, patterns)) -> (R,)`` at the observed pattern counts, with
        the percentile interval of its bootstrap draws (widened to contain the value)."""
        kappa = kappa_of(freq)[0] if n else np.nan
        low = high = None
        if boot:
            low, high = map(stats.to_float, stats.percentile_interval(kappa_of(w), options.confidence))
            low, high = stats.contain(stats.to_float(kappa), low, high)
        return MetricValue(
            metric=metric,
            attribute=attribute,
            scope=cell_scope,
            value=stats.to_float(kappa),
            ci_low=low,
            ci_high=high,
            n=n,
            n_unknown=n_unknown,
            params={**params, **extra},
        )

    if len(judges) == 2:
        scope = {**scope, "judge_id": judges[0], "judge_id_b": judges[1]}
        a, b = _onehot(patterns[:, 0], labels), _onehot(patterns[:, 1], labels)
        cohen = kappa_value("J1_cohen_kappa", lambda weights: _cohen_batch(a[None], b[None], weights), scope, {})
        agree = int((ratings[:, 0] == ratings[:, 1]).sum()) if n else 0
        return [cohen, proportion("J1_raw_agreement", attribute, scope, agree, n, n_unknown, options, labels=labels)]
    counts = np.stack([(patterns == lab).sum(axis=1) for lab in labels], axis=1).astype(float)
    scope = {**scope, "judge_ids": ",".join(judges)}
    fleiss = kappa_value(
        "J1_fleiss_kappa", lambda weights: _fleiss_batch(counts[None], weights), scope, {"judges": len(judges)}
    )
    return [fleiss]
