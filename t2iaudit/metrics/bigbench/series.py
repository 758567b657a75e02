"""The series BIGbench scores are computed over: D5 and D6 prompts, D7 contrast pairs.

A ``Series`` is one metric over units (prompts or pairs) of one (model, judge): a function from
per-prompt label counts to unit values, so the same code serves the observed counts and every
bootstrap resample (``family``). Prompt weights, requested values, references and the contrast
pairs come from ``inputs`` (BIGbench's ``weight.json`` and ``eta.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from t2iaudit.metrics.bigbench.inputs import missing_weights, prompt_weights, reference_vector, requested_value
from t2iaudit.metrics.bigbench.scores import ETA_K, PROMPT_WEIGHTS, eta, eta_terms, implicit_similarity
from t2iaudit.metrics.distribution.formulas import proportions
from t2iaudit.vocabulary import EXCLUDED

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import ImageCodes, JudgementTable


@dataclass
class Series:
    """One metric over units (prompts or pairs) of one (model, judge) and its weighted mean."""

    metric: str
    attribute: str
    unit: str
    """Scope key of a unit: ``prompt_id`` or ``pair``."""
    units: list[str]
    values: Callable[[dict[str, np.ndarray]], np.ndarray]
    """Counts ``{attribute: (..., P, K+1)}`` -> unit values ``(..., U)``."""
    weights: np.ndarray
    n: np.ndarray
    n_unknown: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    unit_params: list[dict[str, Any]] | None = None
    scope: dict[str, str] = field(default_factory=dict)
    proportion: tuple[np.ndarray, np.ndarray] | None = None
    """``(k, n)`` per unit when a unit's value is a proportion (Wilson/Jeffreys interval)."""
    emit_units: bool = True
    agg_params: dict[str, Any] = field(default_factory=dict)
    """Params of the aggregate value only (e.g. ``weights_missing``)."""


def implicit_series(
    codes: ImageCodes, meta: pd.DataFrame, table: JudgementTable, base_of: dict[str, str], options: MetricsOptions
) -> list[Series]:
    """D5 per attribute and ``all``: units are prompts with a reference and no request."""
    if not options.wants("D5_bigbench_implicit"):
        return []
    units, refs = [], {}
    for j, pid in enumerate(codes.prompt_ids):
        key = meta.at[pid, "reference"] if "reference" in meta.columns else None
        dists = table.references.get(key) if isinstance(key, str) else None
        if not dists or any(requested_value(meta, pid, a) for a in codes.attributes):
            continue
        vecs = {a: reference_vector(dists.get(a), codes.labels[a]) for a in codes.attributes}
        vecs = {a: v for a, v in vecs.items() if v is not None}
        if vecs:
            units.append(j)
            refs[j] = vecs
    if not units:
        return []
    idx = np.array(units)
    names_of: dict[str, list[str]] = {}
    for a in codes.attributes:
        names_of.setdefault(base_of[a.split(".")[0]], []).append(a)
    # applies[a][u]: unit u has a reference for attribute name a (e.g. gender.left).
    applies = {a: np.array([a in refs[j] for j in units]) for a in codes.attributes}
    ref_mat = {
        a: np.array([refs[j].get(a, np.full(len(codes.labels[a]), np.nan)) for j in units]) for a in codes.attributes
    }

    def score(base: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        def f(counts: dict[str, np.ndarray]) -> np.ndarray:
            total, cnt, bad = np.zeros(()), np.zeros((), dtype=np.int64), np.zeros((), dtype=bool)
            for a in names_of.get(base, []):
                s = implicit_similarity(proportions(counts[a][..., idx, :-1]), ref_mat[a])
                total = total + np.where(applies[a], np.nan_to_num(s), 0.0)
                cnt = cnt + applies[a]
                bad = bad | (applies[a] & np.isnan(s))
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(bad | (np.asarray(cnt) == 0), np.nan, total / cnt)

        return f

    def total_score(counts: dict[str, np.ndarray]) -> np.ndarray:
        total: np.ndarray = np.zeros(())
        for b, w in PROMPT_WEIGHTS.items():
            total = total + w * score(b)(counts)
        return total

    counts = codes.counts()
    weights, missing = prompt_weights(meta, [codes.prompt_ids[j] for j in units], options.weight_column)
    params = {"weights": options.weight_column, "aggregate": "weighted mean over prompts"}
    unit_params = [{"reference_key": meta.at[codes.prompt_ids[j], "reference"]} for j in units]
    out = []
    bases = [b for b in PROMPT_WEIGHTS if b in names_of] + (["all"] if set(names_of) >= set(PROMPT_WEIGHTS) else [])
    for base in bases:
        attrs = [a for b in ([base] if base != "all" else list(PROMPT_WEIGHTS)) for a in names_of[b]]
        n, u = np.zeros((), dtype=np.int64), np.zeros((), dtype=np.int64)
        for a in attrs:
            n = n + np.where(applies[a], counts[a][idx, :-1].sum(-1), 0)
            u = u + np.where(applies[a], counts[a][idx, -1], 0)
        fn = total_score if base == "all" else score(base)
        out.append(
            Series(
                "D5_bigbench_implicit",
                base,
                "prompt_id",
                [codes.prompt_ids[j] for j in units],
                fn,
                weights,
                n,
                u,
                params,
                unit_params,
                agg_params=missing_weights(missing),
            )
        )
    return out


def explicit_series(codes: ImageCodes, meta: pd.DataFrame, options: MetricsOptions) -> list[Series]:
    """D6: units are prompts that request a declared value of a judged attribute."""
    if not options.wants("D6_bigbench_explicit"):
        return []
    counts = codes.counts()
    out: list[Series] = []
    for attr in codes.attributes:
        requests = [(j, requested_value(meta, pid, attr)) for j, pid in enumerate(codes.prompt_ids)]
        found = [(j, v) for j, v in requests if v is not None and v in codes.labels[attr]]
        if not found:
            continue
        for value in [None, *sorted({v for _, v in found})]:
            sel = [(j, v) for j, v in found if value is None or v == value]
            idx = np.array([j for j, _ in sel])
            col = np.array([codes.labels[attr].index(v) for _, v in sel])

            def f(
                c: dict[str, np.ndarray], idx: np.ndarray = idx, col: np.ndarray = col, attr: str = attr
            ) -> np.ndarray:
                return proportions(c[attr][..., idx, :-1])[..., np.arange(len(idx)), col]

            k = counts[attr][idx, col]
            n = counts[attr][idx, :-1].sum(-1)
            weights, missing = prompt_weights(meta, [codes.prompt_ids[j] for j in idx], options.weight_column)
            agg = missing_weights(missing)
            if EXCLUDED in codes.labels[attr]:
                agg["n_excluded"] = int(counts[attr][idx, codes.labels[attr].index(EXCLUDED)].sum())
            series = Series(
                "D6_bigbench_explicit",
                attr,
                "prompt_id",
                [codes.prompt_ids[j] for j in idx],
                f,
                weights,
                n,
                counts[attr][idx, -1],
                {"weights": options.weight_column, "aggregate": "weighted mean over prompts"},
                [{"requested": v} for _, v in sel],
                {} if value is None else {"requested": value},
                (k, n),
                emit_units=value is None,
                agg_params=agg,
            )
            out.append(series)
    return out


def eta_series(
    codes: ImageCodes,
    table: JudgementTable,
    base_of: dict[str, str],
    pairs: list[dict[str, Any]],
    options: MetricsOptions,
) -> list[Series]:
    """D7 per attribute and ``all``: units are the contrast pairs whose prompts are present."""
    compat = "bigbench-code" in options.compat
    pos = {pid: j for j, pid in enumerate(codes.prompt_ids)}
    bases = {base_of[a.split(".")[0]] for a in codes.attributes}
    found = []  # (pair, {base: (attr_x, jx, r_x, attr_y, jy, r_y, value mask)})
    for pair in pairs:
        x, y = pair["x"], pair["y"]
        parts = {}
        for base in sorted(bases):
            role = {v: k for k, v in base_of.items()}[base]
            ax = role + (f".{x['side']}" if x.get("side") else "")
            ay = role + (f".{y['side']}" if y.get("side") else "")
            rx = (table.references.get(x["reference"]) or {}).get(ax)
            ry = (table.references.get(y["reference"]) or {}).get(ay)
            if (
                ax not in codes.labels
                or ay not in codes.labels
                or x["prompt_id"] not in pos
                or y["prompt_id"] not in pos
            ):
                continue
            if rx is None or ry is None or codes.labels[ax] != codes.labels[ay]:
                continue
            vx, vy = reference_vector(rx, codes.labels[ax]), reference_vector(ry, codes.labels[ay])
            if vx is None or vy is None:  # an empty reference table
                continue
            keep = np.isfinite(vx) & np.isfinite(vy)
            parts[base] = (ax, pos[x["prompt_id"]], vx, ay, pos[y["prompt_id"]], vy, keep)
        if parts or compat:
            found.append((pair, parts))
    if not any(parts for _, parts in found):
        return []
    counts = codes.counts()
    weights = np.array([float(p["weight"]) for p, _ in found])
    form = "p - r^2 (bigbench-code)" if compat else "(p - r)^2 (paper)"
    params = {"form": form, "aggregate": "weighted mean over pairs", "missing_pairs": 0.5 if compat else "left out"}
    unit_params = [{"x": p["x"]["prompt_id"], "y": p["y"]["prompt_id"], "weight": p["weight"]} for p, _ in found]

    def values(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cols: dict[str, list[np.ndarray]] = {}
        lead = next(iter(c.values())).shape[:-2]
        for _, parts in found:
            terms = {}
            for base, (ax, jx, vx, ay, jy, vy, keep) in parts.items():
                px, py = proportions(c[ax][..., jx, :-1]), proportions(c[ay][..., jy, :-1])
                terms[base] = eta_terms(px[..., keep], vx[keep], py[..., keep], vy[keep], ETA_K[base], compat)
            etas = eta(terms)
            for key in [*sorted(bases), "all"]:
                v = etas.get(key, np.full(lead, np.nan))
                cols.setdefault(key, []).append(np.where(np.isnan(v), 0.5, v) if compat else v)
        return {k: np.stack(v, axis=-1) for k, v in cols.items()}

    def nsum(key: str, col: slice) -> np.ndarray:
        out = []
        for _, parts in found:
            use = [p for b, p in parts.items() if key in (b, "all")]
            out.append(sum(counts[p[0]][p[1], col].sum() + counts[p[3]][p[4], col].sum() for p in use))
        return np.array(out, dtype=np.int64)

    cache: dict[str, Any] = {}

    def cached(c: dict[str, np.ndarray], key: str) -> np.ndarray:
        if cache.get("counts") is not c:  # the series of all keys share one evaluation
            cache.update(counts=c, values=values(c))
        return cache["values"][key]

    def of_key(key: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        return lambda c: cached(c, key)

    series = []
    for key in [*sorted(bases), *(["all"] if bases >= set(ETA_K) else [])]:
        n, u = nsum(key, slice(0, -1)), nsum(key, slice(-1, None))
        units = [p["id"] for p, _ in found]
        series.append(Series("D7_bigbench_eta", key, "pair", units, of_key(key), weights, n, u, params, unit_params))
    return series
