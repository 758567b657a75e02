"""Caption-based hallucination metrics H1 and H3 (TBYB, arXiv 2312.13053).

Every function here is pure: it reads the judgement table (``t2iaudit.metrics.table``) and
returns ``MetricValue`` records. The label-based rates H2, H4, H5 and H6 live in
``label_rates``; ``family.hallucination_family`` runs them all. Cells: judge x model, and judge x model x prompt.

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

from t2iaudit.metrics import stats, strata
from t2iaudit.metrics.hallucination.options import HallucinationOptions
from t2iaudit.metrics.hallucination.wordfold import (
    PERSON_WORDS,
    CaptionFolder,
    Lexicon,
    content_words,
    fold_synonyms,
    get_lexicon,
)
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


@dataclass(frozen=True)
class _Scored:
    """Per caption row: H1's three values (NaN where undefined), abstentions and H3's objects."""

    h: np.ndarray
    added: np.ndarray
    missing: np.ndarray
    unknown: np.ndarray
    objects: list[set[str]]


def _score_rows(prompts: list[Any], captions: list[Any], known: np.ndarray, lexicon: Lexicon) -> _Scored:
    """:func:`score_caption` and :func:`added_objects` of every row, each text tokenised once
    (a prompt's words once per distinct prompt)."""
    n = len(captions)
    h, added, missing = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    unknown = np.ones(n, dtype=bool)
    objects: list[set[str]] = [set() for _ in range(n)]
    prompt_words: dict[str, tuple[list[str], list[str]]] = {}
    folder = CaptionFolder(lexicon)
    for i, (prompt, caption, ok) in enumerate(zip(prompts, captions, known.tolist())):
        if not ok or not isinstance(caption, str):
            continue
        if prompt not in prompt_words:
            plain = content_words(prompt, lexicon, person_fold=False)
            prompt_words[prompt] = (plain, _person_fold(plain))
        plain_in, folded_in = prompt_words[prompt]
        plain_out = folder.words(caption)
        score = HallucinationScore(frozenset(folded_in), frozenset(folder.fold(folded_in, _person_fold(plain_out))))
        unknown[i] = False
        jaccard = score.jaccard_hallucination
        if jaccard is not None:
            h[i], added[i] = jaccard, score.added
        if score.missing is not None:
            missing[i] = score.missing
        objects[i] = set(folder.fold(plain_in, plain_out)) - set(plain_in)
    return _Scored(h, added, missing, unknown, objects)


def _person_fold(words: list[str]) -> list[str]:
    """``content_words(..., person_fold=True)`` from its ``person_fold=False`` output."""
    return ["person" if w in PERSON_WORDS else w for w in words]


def caption_metrics(frame: pd.DataFrame, opts: HallucinationOptions, options: MetricsOptions) -> list[MetricValue]:
    rows = frame[frame["attribute"] == opts.caption_attribute]
    text_col = next((c for c in opts.prompt_text_columns if c in rows.columns), None)
    if rows.empty or text_col is None or "raw" not in rows.columns:
        return []
    lexicon = get_lexicon(opts.lexicon)
    known = (rows["label"] != UNKNOWN).to_numpy()
    scored = _score_rows(rows[text_col].tolist(), rows["raw"].tolist(), known, lexicon)
    params = {"lexicon": lexicon.name, "text_column": text_col, "unknown_in_denominator": False}
    rng = np.random.default_rng(options.seed)
    population = options.estimand == "prompt_population"
    prompt_ids = rows["prompt_id"].to_numpy()
    out: list[MetricValue] = []
    for (judge, model), at in rows.groupby(["judge_id", "model_id"], sort=True).indices.items():
        scope = {"judge_id": str(judge), "model_id": str(model)}
        cell = _Cell(scored, at, prompt_ids[at])
        common = {**params, "estimand": options.estimand, "seed": options.seed}
        model_common = {
            **common,
            "interval": "bootstrap: images within prompts" + (", prompts first" if population else ""),
        }
        for metric, values in cell.metrics():
            valid = np.isfinite(values)
            low, high = strata.bootstrap_mean_interval(
                values[valid],
                cell.prompts[valid],
                options.bootstrap_resamples,
                rng,
                resample_strata=population,
                confidence=options.confidence,
            )
            out.append(
                cell.value(
                    metric, values, low, high, opts.caption_attribute, scope, options.bootstrap_resamples, model_common
                )
            )
        judged = ~cell.unknown
        objects = [scored.objects[i] for i in at[judged]]
        out += _distribution_bias(objects, cell.prompts[judged], scope, opts, options, rng, int(cell.unknown.sum()))
        if opts.per_prompt:
            out += _per_prompt(
                cell, scope, opts, options, rng, {**common, "interval": "bootstrap: images within prompts"}
            )
    return out


class _Cell:
    """The caption rows of one judge x model: H1 values and abstentions, by prompt."""

    def __init__(self, scored: _Scored, at: np.ndarray, prompts: np.ndarray) -> None:
        self.h, self.added, self.missing = scored.h[at], scored.added[at], scored.missing[at]
        self.unknown = scored.unknown[at]
        self.prompts = prompts
        self.codes, self.prompt_ids = pd.factorize(pd.Series(prompts), sort=True)

    def metrics(self) -> list[tuple[str, np.ndarray]]:
        return [("H1_hallucination", self.h), ("H1_added", self.added), ("H1_missing", self.missing)]

    def value(
        self,
        metric: str,
        values: np.ndarray,
        low: float | None,
        high: float | None,
        attribute: str,
        scope: dict[str, str],
        resamples: int,
        params: dict[str, Any],
    ) -> MetricValue:
        """The model-level value of one H1 metric."""
        valid = np.isfinite(values)
        n_unknown = int(self.unknown.sum())
        # A caption (or prompt) with no content word leaves the metric undefined for the image:
        # it counts with the abstentions, so n + n_unknown is every image of the cell.
        undefined = values.size - int(valid.sum()) - n_unknown
        return MetricValue(
            metric=metric,
            attribute=attribute,
            scope=scope,
            value=float(values[valid].mean()) if valid.any() else None,
            ci_low=low,
            ci_high=high,
            n=int(valid.sum()),
            n_unknown=n_unknown + undefined,
            params={**params, "resamples": resamples, "n_undefined": undefined},
        )


def _per_prompt(
    cell: _Cell,
    scope: dict[str, str],
    opts: HallucinationOptions,
    options: MetricsOptions,
    rng: np.random.Generator,
    params: dict[str, Any],
) -> list[MetricValue]:
    """H1 per prompt of one judge x model, every prompt's interval in one vectorised bootstrap."""
    n_prompts = len(cell.prompt_ids)
    rows = np.bincount(cell.codes, minlength=n_prompts)
    n_unknown = np.bincount(cell.codes, weights=cell.unknown, minlength=n_prompts).astype(int)
    boot = options.bootstrap_resamples if options.prompt_bootstrap else 0
    found = {}
    for metric, values in cell.metrics():
        valid = np.isfinite(values)
        n = np.bincount(cell.codes[valid], minlength=n_prompts)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(cell.codes[valid], weights=values[valid], minlength=n_prompts) / n
        low, high = strata.bootstrap_group_mean_intervals(
            values[valid], cell.codes[valid], boot, rng, options.confidence, n_groups=n_prompts
        )
        found[metric] = (n, mean, low, high)
    out = []
    for j, prompt in enumerate(cell.prompt_ids):
        for metric, (n, mean, low, high) in found.items():
            undefined = int(rows[j] - n[j] - n_unknown[j])
            out.append(
                MetricValue(
                    metric=metric,
                    attribute=opts.caption_attribute,
                    scope={**scope, "prompt_id": str(prompt)},
                    value=float(mean[j]) if n[j] else None,
                    ci_low=stats.to_float(low[j]),
                    ci_high=stats.to_float(high[j]),
                    n=int(n[j]),
                    n_unknown=int(n_unknown[j]) + undefined,
                    params={**params, "resamples": boot, "n_undefined": undefined},
                )
            )
    return out


def _distribution_bias(
    objects: list[set[str]],
    prompts: np.ndarray,
    scope: dict[str, str],
    opts: HallucinationOptions,
    options: MetricsOptions,
    rng: np.random.Generator,
    n_unknown: int,
) -> list[MetricValue]:
    """H3 of one judge x model from the objects of its judged (not abstained) captions."""
    counts = Counter(w for objs in objects for w in objs)
    words = sorted(counts)
    k = len(words)
    value = distribution_bias(counts.values())
    low = high = nlow = nhigh = None
    boot = options.bootstrap_resamples
    if boot > 0 and len(objects) > 0 and k > 0:
        from scipy import sparse

        col = {w: i for i, w in enumerate(words)}
        pairs = [(i, col[w]) for i, objs in enumerate(objects) for w in objs]
        r, j = np.array(pairs).T
        x = sparse.csr_matrix((np.ones(len(pairs)), (r, j)), shape=(len(objects), k))  # image x object
        population = options.estimand == "prompt_population"
        # (B, K) resampled object counts, a chunk of weights at a time (all B x n weights at once
        # took gigabytes at a million captions).
        c = np.concatenate(
            [
                np.asarray((x.T @ strata.bootstrap_weights(prompts, size, rng, resample_strata=population).T).T)
                for size in stats.chunk_sizes(boot, len(objects))
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
        "n": len(objects),
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
