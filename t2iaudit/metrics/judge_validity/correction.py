"""J3: judge-error-corrected label distributions from a labelled calibration set (CLEAM-style).

A judge's confusion matrix ``C[j, k] = P(judged k | true j)`` is measured on calibration
images whose true labels are known. If the audit images have true shares ``q``, the judged
shares are ``p = C^T q`` in expectation, so ``q = solve(C^T, p)``; sampling noise can push that
outside the simplex, so it is projected back: ``p_true = project_simplex(solve(C^T, p))``
(Euclidean projection, Wang & Carreira-Perpinan 2013). This follows the correction idea of
CLEAM (Teo et al., "On Measuring Fairness in Generative Models", NeurIPS 2023), which also
corrects for the classifier's errors, with a plain linear inversion instead of CLEAM's
statistical model.

The interval is a percentile bootstrap that resamples *both* the calibration pairs and the
audit images (images within prompts, and prompts), so it carries the uncertainty of C as well
as of p. Images a judge answered ``unknown`` are dropped from both sides (C and p are
conditional on a label being given). A true class that never occurs in the calibration set
(or in a resample) has no row of C; that row is taken as the identity (the judge assumed right
for it) and the class is listed in ``params.uncalibrated``.

The calibration set's format, how its images are judged and the confusion counts are in
``t2iaudit.calibration``; the judgement table carries each judge's judged calibration set
(``JudgementTable.calibration``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from t2iaudit.calibration import confusion_counts, load_calibration
from t2iaudit.errors import InputError
from t2iaudit.metrics import stats
from t2iaudit.types import UNKNOWN, MetricValue

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import JudgementTable


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of ``v`` onto the probability simplex.

    ``x = max(v - theta, 0)`` with ``theta = (sum_{i <= rho} u_i - 1) / rho`` over ``u`` sorted
    descending and ``rho`` the largest i with ``u_i > (sum_{j <= i} u_j - 1) / i``
    (Wang & Carreira-Perpinan 2013, arXiv 1309.1541).
    """
    v = np.asarray(v, dtype=float)
    flat = v.reshape(-1, v.shape[-1])
    u = -np.sort(-flat, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    idx = np.arange(1, flat.shape[1] + 1)
    rho = (u - css / idx > 0).sum(axis=1)
    theta = css[np.arange(len(flat)), rho - 1] / rho
    return np.maximum(flat - theta[:, None], 0.0).reshape(v.shape)


def solve_corrected(confusion: np.ndarray, judged_counts: np.ndarray) -> np.ndarray:
    """``solve(C^T, p)`` before the projection: unbiased to first order, may leave the simplex.

    Args:
        confusion: ``(..., K, K)`` counts ``N[j, k]`` (rows: true class); a row with no
            calibration image is taken as the identity (the judge assumed right for it).
        judged_counts: ``(..., K)`` audit counts over declared labels (unknowns excluded).
    """
    n = np.asarray(confusion, dtype=float)
    rows = n.sum(axis=-1, keepdims=True)
    eye = np.broadcast_to(np.eye(n.shape[-1]), n.shape)
    c = np.where(rows > 0, n / np.where(rows > 0, rows, 1.0), eye)
    p = np.asarray(judged_counts, dtype=float)
    p = p / p.sum(axis=-1, keepdims=True)
    return (np.linalg.pinv(np.swapaxes(c, -1, -2)) @ p[..., None])[..., 0]


def corrected_shares(confusion: np.ndarray, judged_counts: np.ndarray) -> np.ndarray:
    """``project_simplex(solve(C^T, p))`` for stacked confusion counts and judged counts."""
    return project_simplex(solve_corrected(confusion, judged_counts))


def corrected_interval(
    confusion: np.ndarray,
    prompt_counts: np.ndarray,
    resamples: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
    *,
    resample_prompts: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrected shares with a bootstrap interval over calibration pairs and audit images.

    Each resample draws the rows of C from their Jeffreys posteriors (so the error of C is
    carried, also for cells the calibration set never hit) and the audit images within prompts (and, with
    ``resample_prompts``, the prompts first: the ``prompt_population`` estimand). The interval is
    the percentile interval of the *unprojected* solution clipped to [0, 1]: projecting every
    draw onto the simplex piles draws on 0 and shifts the others, so the projected draws do not
    cover a true share near 0 or 1. It is widened to contain the (projected) estimate.

    Args:
        confusion: ``(K, K)`` calibration counts.
        prompt_counts: ``(P, K)`` audit counts per prompt (unknowns excluded).
        resamples: Bootstrap resamples (0: no interval, NaN bounds).
        resample_prompts: Also resample prompts (intervals generalise over prompts).

    Returns:
        ``(estimate, low, high)``, each of shape ``(K,)``.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    prompt_counts = np.atleast_2d(np.asarray(prompt_counts, dtype=np.int64))
    estimate = corrected_shares(confusion, prompt_counts.sum(axis=0))
    k = confusion.shape[0]
    if resamples <= 0 or confusion.sum() == 0:
        nan = np.full(k, np.nan)
        return estimate, nan, nan
    # Rows of C from their Jeffreys posteriors Dirichlet(N[j] + 1/2): a cell never observed in a
    # small calibration set (a judge right 17 times out of 17) still carries its uncertainty,
    # which resampling the observed counts would set to zero.
    rows = np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    cal = stats.jeffreys_draws(confusion, resamples, rng) * rows
    # The pooled judged distribution from its Jeffreys posterior: never degenerate (a label no
    # image got still varies), and slightly conservative for the audited prompts, whose images
    # vary less than one multinomial of the pooled shares.
    pooled = prompt_counts.sum(axis=0)
    total = max(int(pooled.sum()), 1)
    audit = stats.jeffreys_draws(pooled, resamples, rng)
    if resample_prompts and len(prompt_counts) > 1:
        # Prompt population: stretch it to the spread of a two-stage bootstrap (prompts, then
        # images), scaled by sqrt(P / (P - 1)) t_{P-1} / z for a mean over few prompts.
        n = len(prompt_counts)
        share = stats.two_stage_shares(prompt_counts, resamples, rng)
        center = pooled / total
        scale = stats.small_sample_scale(n, confidence)
        ratio = scale**2 * share.var(axis=0) / np.maximum(audit.var(axis=0), 1e-300)
        audit = center + np.sqrt(np.fmax(1.0, ratio)) * (audit - center)
    audit = np.clip(audit, 0.0, None) * total
    ok = audit.sum(axis=1) > 0
    low, high = stats.percentile_interval(solve_corrected(cal[ok], audit[ok]), confidence)
    low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    return estimate, np.fmin(low, estimate), np.fmax(high, estimate)


INTERVAL = "bootstrap: C rows from Dirichlet(N + 1/2), audit images; unprojected percentiles clipped to [0, 1]"


def _calibration_for(judge_id: str, files: dict[str, str]) -> str | None:
    name = judge_id.split("@", 1)[0]
    return files.get(judge_id) or files.get(name)


def corrected_metrics(table: JudgementTable, options: MetricsOptions, files: dict[str, str]) -> list[MetricValue]:
    """``J3_corrected_share`` per judge, attribute, model and label, for judges with a file."""
    frame = table.frame
    out: list[MetricValue] = []
    rng = np.random.default_rng(options.seed)
    for judge_id in sorted(frame["judge_id"].unique()):
        file = _calibration_for(str(judge_id), files)
        if file is None:
            continue
        cal = load_calibration(file)
        for attribute, labels in sorted(table.label_sets.get(judge_id, {}).items()):
            if attribute not in cal.judged or not labels:
                continue
            true, judged = cal.pairs(attribute)
            bad = sorted({str(x) for x in [*true, *judged] if x not in labels and x != UNKNOWN})
            if bad:
                raise InputError(
                    f"label {bad[0]!r} is not declared for judge {judge_id!r} (declared: {labels})",
                    file=file,
                    field=f"column {attribute}",
                )
            confusion = confusion_counts(true, judged, labels)
            missing = [lab for lab, row in zip(labels, confusion) if row.sum() == 0]
            rows = frame[(frame["judge_id"] == judge_id) & (frame["attribute"] == attribute)]
            undeclared = sorted(set(rows["label"]) - set(labels) - {UNKNOWN})
            if undeclared:  # it would count in n but in no class of the corrected shares
                raise InputError(
                    f"label {undeclared[0]!r} is not declared for judge {judge_id!r}, attribute {attribute!r} "
                    f"(declared: {labels} and {UNKNOWN!r})",
                    field=f"judge {judge_id}, attribute {attribute}, label",
                )
            for model, cell in rows.groupby("model_id", sort=True):
                known = cell[cell["label"] != UNKNOWN]
                if known.empty:
                    continue
                wide = known.groupby(["prompt_id", "label"]).size().unstack(fill_value=0)
                counts = wide.reindex(columns=labels, fill_value=0).to_numpy()
                est, low, high = corrected_interval(
                    confusion,
                    counts,
                    options.bootstrap_resamples,
                    rng,
                    options.confidence,
                    resample_prompts=options.estimand == "prompt_population",
                )
                raw = counts.sum(axis=0) / counts.sum()
                common = {
                    "calibration": file,
                    "n_calibration": int(confusion.sum()),
                    "uncalibrated": missing,
                    "interval": INTERVAL,
                    "estimand": options.estimand,
                    "resamples": options.bootstrap_resamples,
                    "seed": options.seed,
                    "unknown_in_denominator": False,
                }
                for i, label in enumerate(labels):
                    value = MetricValue(
                        metric="J3_corrected_share",
                        attribute=attribute,
                        scope={"judge_id": str(judge_id), "model_id": str(model)},
                        value=float(est[i]),
                        ci_low=stats.to_float(low[i]),
                        ci_high=stats.to_float(high[i]),
                        n=len(known),
                        n_unknown=len(cell) - len(known),
                        params={"label": label, "judged_share": float(raw[i]), **common},
                    )
                    out.append(value)
    return out
