"""Caption-based hallucination metrics H1 and H3 (TBYB, arXiv 2312.13053).

Every function here is pure: it reads the judgement table (``t2iaudit.metrics.table``) and
returns ``MetricValue`` records. The label-based rates H2, H4, H5 and H6 live in
``label_rates``; ``family.hallucination_family`` runs them all. Cells: ``options.iter_cells``.

Word folding (content words, plurals, synonyms, the person fold) and its deviations from
the TBYB code are described in ``wordfold``: synonyms come from NLTK's
WordNet when its corpus is installed, else from the small hand-written list shipped in
``t2iaudit/data/wordfold.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from t2iaudit.metrics import stats
from t2iaudit.metrics.hallucination.options import HallucinationOptions, iter_cells
from t2iaudit.metrics.hallucination.wordfold import Lexicon, content_words, fold_synonyms, get_lexicon
from t2iaudit.types import UNKNOWN, MetricValue

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions


@dataclass(frozen=True)
class HallucinationScore:
    """H1 for one image: ``I`` prompt objects, ``O`` caption objects (sets)."""

    inputs: frozenset[str]
    outputs: frozenset[str]

    @property
    def jaccard_hallucination(self) -> float | None:
        """``1 - |I ∩ O| / |I ∪ O|``; None when both are empty."""
        union = self.inputs | self.outputs
        return None if not union else 1.0 - len(self.inputs & self.outputs) / len(union)

    @property
    def added(self) -> float | None:
        """``H_P = |O \\ I| / |O|`` (0 when O is empty, as TBYB)."""
        return len(self.outputs - self.inputs) / len(self.outputs) if self.outputs else 0.0

    @property
    def missing(self) -> float | None:
        """``H_N = |I \\ O| / |I|``; None when the prompt has no content word."""
        return len(self.inputs - self.outputs) / len(self.inputs) if self.inputs else None


def score_caption(prompt: str, caption: str, lexicon: Lexicon | None = None) -> HallucinationScore:
    """H1 objects of one (prompt, caption) pair: content words, synonyms and persons folded."""
    lexicon = lexicon or get_lexicon()
    inputs = content_words(prompt, lexicon)
    outputs = fold_synonyms(inputs, content_words(caption, lexicon), lexicon)
    return HallucinationScore(frozenset(inputs), frozenset(outputs))


def added_objects(prompt: str, caption: str, lexicon: Lexicon | None = None) -> set[str]:
    """H3 objects: caption words absent from the prompt, folded but not person-folded."""
    lexicon = lexicon or get_lexicon()
    inputs = content_words(prompt, lexicon, person_fold=False)
    outputs = fold_synonyms(inputs, content_words(caption, lexicon, person_fold=False), lexicon)
    return set(outputs) - set(inputs)


def distribution_bias(counts: Iterable[float]) -> float:
    """TBYB ``B_D``: sort counts descending, min-max normalise (all 1 if max = min), take
    ``sum_k c'_k - (c'_1 + c'_K)/2`` (the trapezoid area with dx = 1). 0 for no or one object.
    """
    c = np.sort(np.asarray(list(counts), dtype=float))[::-1]
    if c.size == 0:
        return 0.0
    span = c[0] - c[-1]
    norm = np.ones_like(c) if span == 0 else (c - c[-1]) / span
    return float(norm.sum() - (norm[0] + norm[-1]) / 2.0)


def distribution_bias_rows(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`distribution_bias` of every row of ``(B, K)`` object counts (absent objects: 0).

    Returns:
        ``(B_D, K_present)`` per row; objects with count 0 in a row are not in that row.
    """
    c = np.asarray(counts, dtype=float)
    present = c > 0
    kk = present.sum(axis=1)
    cmax = np.where(present, c, -np.inf).max(axis=1)
    cmin = np.where(present, c, np.inf).min(axis=1)
    span = cmax - cmin
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(present, (c - cmin[:, None]) / np.where(span > 0, span, 1.0)[:, None], 0.0)
    # Sorted descending the first normalised count is 1 and the last 0: (c'_1 + c'_K) / 2 = 1/2.
    # All equal: every c' is 1, B_D = K - 1; no object: 0.
    bd = np.where(span > 0, norm.sum(axis=1) - 0.5, np.maximum(kk - 1.0, 0.0))
    return bd, kk


def caption_metrics(frame: pd.DataFrame, opts: HallucinationOptions, options: MetricsOptions) -> list[MetricValue]:
    rows = frame[frame["attribute"] == opts.caption_attribute]
    text_col = next((c for c in opts.prompt_text_columns if c in rows.columns), None)
    if rows.empty or text_col is None or "raw" not in rows.columns:
        return []
    lexicon = get_lexicon(opts.lexicon)
    rows = rows.copy()
    known = rows["label"] != UNKNOWN
    scores = [
        score_caption(p, c, lexicon) if k and isinstance(c, str) else None
        for p, c, k in zip(rows[text_col], rows["raw"], known)
    ]
    rows["_h"] = [s.jaccard_hallucination if s else None for s in scores]
    rows["_hp"] = [s.added if s and s.jaccard_hallucination is not None else None for s in scores]
    rows["_hn"] = [s.missing if s else None for s in scores]
    rows["_unknown"] = [s is None for s in scores]
    rows["_objects"] = [
        added_objects(p, c, lexicon) if s else set() for p, c, s in zip(rows[text_col], rows["raw"], scores)
    ]
    params = {"lexicon": lexicon.name, "text_column": text_col, "unknown_in_denominator": False}
    rng = np.random.default_rng(options.seed)
    population = options.estimand == "prompt_population"
    out: list[MetricValue] = []
    for scope, cell, model_level in iter_cells(rows, opts.per_prompt):
        n_unknown = int(cell["_unknown"].sum())
        boot = options.bootstrap_resamples if (model_level or options.prompt_bootstrap) else 0
        for metric, col in (("H1_hallucination", "_h"), ("H1_added", "_hp"), ("H1_missing", "_hn")):
            valid = cell[cell[col].notna()]
            values = valid[col].to_numpy(dtype=float)
            low, high = stats.bootstrap_mean_interval(
                values,
                valid["prompt_id"].to_numpy(),
                boot,
                rng,
                resample_strata=model_level and population,
                confidence=options.confidence,
            )
            # A caption (or prompt) with no content word leaves the metric undefined for the image:
            # it counts with the abstentions, so n + n_unknown is every image of the cell.
            undefined = len(cell) - len(valid) - n_unknown
            interval = "bootstrap: images within prompts" + (", prompts first" if model_level and population else "")
            value_params = {
                **params,
                "interval": interval,
                "estimand": options.estimand,
                "resamples": boot,
                "seed": options.seed,
                "n_undefined": undefined,
            }
            out.append(
                MetricValue(
                    metric=metric,
                    attribute=opts.caption_attribute,
                    scope=scope,
                    value=float(values.mean()) if values.size else None,
                    ci_low=low,
                    ci_high=high,
                    n=int(values.size),
                    n_unknown=n_unknown + undefined,
                    params=value_params,
                )
            )
        if model_level:
            out += _distribution_bias(cell, scope, opts, options, rng, n_unknown)
    return out


def _distribution_bias(
    cell: pd.DataFrame,
    scope: dict[str, str],
    opts: HallucinationOptions,
    options: MetricsOptions,
    rng: np.random.Generator,
    n_unknown: int,
) -> list[MetricValue]:
    valid = cell[~cell["_unknown"]]
    counts = Counter(w for objs in valid["_objects"] for w in objs)
    words = sorted(counts)
    k = len(words)
    value = distribution_bias(counts.values())
    low = high = nlow = nhigh = None
    boot = options.bootstrap_resamples
    if boot > 0 and len(valid) > 0 and k > 0:
        from scipy import sparse

        col = {w: i for i, w in enumerate(words)}
        pairs = [(i, col[w]) for i, objs in enumerate(valid["_objects"]) for w in objs]
        r, j = np.array(pairs).T
        x = sparse.csr_matrix((np.ones(len(pairs)), (r, j)), shape=(len(valid), k))  # image x object
        strata = valid["prompt_id"].to_numpy()
        population = options.estimand == "prompt_population"
        # (B, K) resampled object counts, a chunk of weights at a time (all B x n weights at once
        # took gigabytes at a million captions).
        sizes = stats.chunk_sizes(boot, len(valid))
        c = np.concatenate(
            [
                np.asarray((x.T @ stats.bootstrap_weights(strata, size, rng, resample_strata=population).T).T)
                for size in sizes
            ]
        )
        bd, kk = distribution_bias_rows(c)
        with np.errstate(invalid="ignore", divide="ignore"):
            bd_norm = np.where(kk > 1, bd / (kk - 1), np.nan)
        low, high = stats.contain(value, *map(stats.to_float, stats.percentile_interval(bd, options.confidence)))
        if k > 1:
            nlow, nhigh = stats.contain(
                value / (k - 1), *map(stats.to_float, stats.percentile_interval(bd_norm, options.confidence))
            )
    params = {
        "objects": k,
        "top_objects": dict(counts.most_common(10)),
        "interval": "bootstrap",
        "resamples": boot,
        "seed": options.seed,
        "interval_note": "B_D hinges on the rarest object's count; the percentile interval is rough",
        "coverage": "not shown",
        "estimand": options.estimand,
        "unknown_in_denominator": False,
    }
    common: dict[str, Any] = {
        "attribute": opts.caption_attribute,
        "scope": scope,
        "n": len(valid),
        "n_unknown": n_unknown,
    }
    return [
        MetricValue(metric="H3_distribution_bias", value=value, ci_low=low, ci_high=high, params=params, **common),
        MetricValue(
            metric="H3_distribution_bias_norm",
            value=value / (k - 1) if k > 1 else None,
            ci_low=nlow,
            ci_high=nhigh,
            params={**params, "divisor": "K - 1"},
            **common,
        ),
    ]
