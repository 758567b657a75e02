"""Compare two groups (models, runs, original vs debiased prompts) within cells: counts,
proportions, differences with Newcombe intervals, Pearson chi-square, Fisher's exact test and
Holm-adjusted p-values (METRICS.md, "Uncertainty and comparisons").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t2iaudit.errors import InputError
from t2iaudit.metrics import stats
from t2iaudit.metrics.significance import fisher_exact, holm, pearson_chi2
from t2iaudit.metrics.table import UNKNOWN_LABEL, JudgementTable, is_categorical

RUN_COLUMN = "run"
"""Column naming the run directory when several runs are compared."""
FISHER_BELOW = 5.0
"""Fisher's exact test is reported when an expected count is below this."""


@dataclass(frozen=True)
class Between:
    """The two groups: rows with ``column == a`` against rows with ``column == b``."""

    column: str
    a: str
    b: str

    @classmethod
    def parse(cls, text: str) -> Between:
        """``COL=A,B`` -> Between; raises InputError naming ``--between`` otherwise."""
        column, sep, values = text.partition("=")
        parts = [v.strip() for v in values.split(",")]
        if not sep or not column.strip() or len(parts) != 2 or not all(parts):
            raise InputError(f"expected COL=A,B, got {text!r}", field="--between")
        if parts[0] == parts[1]:
            raise InputError(f"the two groups are the same value {parts[0]!r}", field="--between")
        return cls(column.strip(), parts[0], parts[1])


def load_runs(run_dirs: Sequence[str | Path]) -> JudgementTable:
    """Load one or more run directories into one table with a ``run`` column (the dir name)."""
    from t2iaudit.metrics.table import load_table

    names = [Path(d).resolve().name for d in run_dirs]
    if len(set(names)) != len(names):
        raise InputError(f"run directories must have distinct names, got {names}", field="RUN_DIR")
    frames: list[pd.DataFrame] = []
    label_sets: dict[str, dict[str, list[str]]] = {}
    references: dict[str, dict[str, dict[str, float]]] = {}
    roles: dict[str, dict[str, str]] = {}
    maps_to: dict[str, dict[str, dict[str, Any]]] = {}
    excluded = []
    for run_dir, name in zip(run_dirs, names):
        if not Path(run_dir).is_dir():
            raise InputError("run directory not found", file=run_dir)
        table = load_table(run_dir)
        frames.append(table.frame.assign(**{RUN_COLUMN: name}))
        excluded.append(table.excluded.assign(**{RUN_COLUMN: name}))
        for judge, attrs in table.roles.items():
            roles.setdefault(judge, {}).update(attrs)
        for judge, maps in table.maps_to.items():
            maps_to.setdefault(judge, {}).update(maps)
        for judge, declared in table.label_sets.items():
            for attr, labels in declared.items():
                known = label_sets.setdefault(judge, {}).setdefault(attr, list(labels))
                if known != list(labels):
                    raise InputError(
                        f"judge {judge!r} declares different labels for {attr!r} across runs",
                        file=run_dir,
                        field=f"judges.{judge}.attributes.{attr}",
                    )
        references.update(table.references)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return JudgementTable(
        frame=frame,
        label_sets=label_sets,
        references=references,
        roles=roles,
        maps_to=maps_to,
        excluded=pd.concat(excluded, ignore_index=True),
    )


UNKNOWN_RATE = "(unknown rate)"
"""``label`` of the row that compares the two groups' unknown rates (its own test)."""

RESULT_COLUMNS = frozenset(
    {"attribute", "between", "a", "b", "label", "test_of", "dropped", "count_a", "count_b", "n_a", "n_b"}
    | {"prop_a", "prop_b", "diff", "diff_low", "diff_high", "chi2", "dof", "p_value", "fisher_p", "test", "p_holm"}
)
"""The columns ``compare`` computes; every other column of its result names the cell (``by``, judge)."""


def compare(
    table: JudgementTable,
    between: Between,
    attribute: str,
    by: Sequence[str] = (),
    drop: Sequence[str] = (),
    confidence: float = 0.95,
    include_unknown: bool = False,
) -> pd.DataFrame:
    """Compare group ``between.a`` with ``between.b`` for one attribute within each cell of ``by``.

    Cells are the combinations of the ``by`` columns (and ``judge_id``, unless judges are
    what is compared, so labels of different judges are never pooled). In each cell, unknowns
    are kept apart (METRICS.md: a difference in abstention is not a difference in labels):

    - one row per declared label (``test_of = "labels"``): ``count_a``/``count_b``,
      ``n_a``/``n_b`` (valid labels not dropped), ``prop_a = count_a / n_a``,
      ``diff = prop_a - prop_b`` with Newcombe's hybrid score interval (``diff_low``,
      ``diff_high``); Pearson chi-square without continuity correction on the 2 x K table of
      kept labels (labels unseen on both sides left out): ``chi2``, ``dof``, ``p_value``
      (``1 - erf(sqrt(chi2/2))`` for one degree of freedom); ``fisher_p``: Fisher's exact test
      when an expected count is below 5 (else None);
    - one row ``label = "(unknown rate)"`` (``test_of = "unknown rate"``): ``count`` unknowns
      against ``n`` = unknowns + valid labels on each side, the difference of the unknown
      rates with its Newcombe interval, and its own chi-square (Fisher when small) on the 2 x 2
      table (unknown, valid) x (a, b);
    - ``p_holm``: Holm's adjustment across every test (each cell's label test and its
      unknown-rate test) of the p-value each relies on (``fisher_p`` where reported, else
      ``p_value``; named in ``test``).

    With ``include_unknown``, ``unknown`` is one more category of the label test instead
    (and there is no unknown-rate row). Labels in ``drop`` keep their counts in the output
    (``dropped = True``) but are left out of n, proportions and tests.

    Args:
        table: The judgement table (several runs: with a ``run`` column, see ``load_runs``).
        between: The two groups.
        attribute: The attribute compared.
        by: Columns defining the cells (prompt metadata, ``model_id``, ``prompt_id``, ...).
        drop: Labels left out of the test and reported.
        confidence: Level of the difference intervals.
        include_unknown: Test ``unknown`` as a category (the behaviour before unknowns were kept
            apart).

    Returns:
        One row per cell and label; cell-level statistics repeat on the cell's rows.

    Raises:
        InputError: An unknown column, a group value absent, an unknown attribute or label, a
            label in the table that the judge does not declare.
    """
    frame = table.frame
    columns = sorted(str(c) for c in frame.columns)
    for col, flag in [*((c, "--by") for c in by), (between.column, "--between")]:
        if col not in frame.columns:
            raise InputError(f"unknown column {col!r} (available: {', '.join(columns)})", field=flag)
    rows = frame[frame["attribute"] == attribute]
    if rows.empty:
        known = sorted(frame["attribute"].unique()) if "attribute" in frame else []
        raise InputError(f"no judgements of attribute {attribute!r} (known: {known})", field="--attribute")
    side = rows[between.column].astype(str)
    for value in (between.a, between.b):
        if not (side == value).any():
            present = sorted(side.unique())[:20]
            raise InputError(
                f"value {value!r} not found in column {between.column!r} for attribute "
                f"{attribute!r} (values: {present})",
                field="--between",
            )
    labels_of = _declared(table, rows, attribute)
    all_labels = {x for labels in labels_of.values() for x in labels} | {UNKNOWN_LABEL}
    for label in drop:
        if label not in all_labels:
            raise InputError(f"label {label!r} is not a label of {attribute!r}", field="--drop")
    if include_unknown and UNKNOWN_LABEL in drop:
        raise InputError("--include-unknown tests unknown as a category; it cannot be dropped too", field="--drop")
    keys = list(by)
    if between.column != "judge_id" and "judge_id" not in keys:
        keys.append("judge_id")
    rows = rows.assign(_side=np.where(side == between.a, "a", np.where(side == between.b, "b", "")))
    rows = rows[rows["_side"] != ""]
    counted = rows.groupby([*keys, "_side", "label"], dropna=False, observed=True).size()
    out: list[dict[str, Any]] = []
    # Judges compared without --by: the whole table is one cell.
    cells = counted.groupby(level=list(range(len(keys))), dropna=False, sort=True) if keys else [((), counted)]
    for cell, block in cells:
        cell = cell if isinstance(cell, tuple) else (cell,)
        cell_keys = dict(zip(keys, cell))
        judges = [cell_keys["judge_id"]] if "judge_id" in cell_keys else sorted(labels_of)
        declared = list(dict.fromkeys(x for j in judges for x in labels_of.get(j, [])))  # judges compared: union
        wide = (block.droplevel(list(range(len(keys)))) if keys else block).unstack("label", fill_value=0)
        labels = [*declared, UNKNOWN_LABEL]
        wide = wide.reindex(index=["a", "b"], columns=labels, fill_value=0).fillna(0).astype(int)
        counts = wide.to_numpy()
        if include_unknown:
            out.extend(_cell_rows(cell_keys, between, attribute, labels, counts, drop, confidence))
            continue
        out.extend(_cell_rows(cell_keys, between, attribute, labels[:-1], counts[:, :-1], drop, confidence))
        keep = np.array([label not in drop for label in labels[:-1]])
        valid = counts[:, :-1][:, keep].sum(axis=1)
        rate = np.stack([counts[:, -1], valid], axis=1)  # rows a, b; columns unknown, valid
        out.extend(
            _cell_rows(
                cell_keys, between, attribute, [UNKNOWN_RATE, "(valid)"], rate, (), confidence, test_of="unknown rate"
            )[:1]
        )
    result = pd.DataFrame(out)
    if not result.empty:
        cells = result.drop_duplicates("_cell")
        adjusted = dict(zip(cells["_cell"], holm(cells["_p"].to_numpy(dtype=float))))
        result["p_holm"] = [_clean(adjusted[c]) for c in result["_cell"]]
        result = result.drop(columns=["_cell", "_p"])
    return result


def _declared(table: JudgementTable, rows: pd.DataFrame, attribute: str) -> dict[str, list[str]]:
    """Each judge's declared labels of ``attribute``; refuses labels the judge does not declare."""
    labels_of: dict[str, list[str]] = {}
    for judge, seen in rows.groupby("judge_id", sort=True)["label"]:
        labels = table.label_sets.get(str(judge), {}).get(attribute)
        where = f"judge {judge}, attribute {attribute}, label"
        if not labels or not is_categorical(labels):
            raise InputError(f"judge {judge!r} declares no categorical labels for {attribute!r}", field=where)
        extra = sorted(set(seen.astype(str)) - set(labels) - {UNKNOWN_LABEL})
        if extra:
            raise InputError(
                f"label {extra[0]!r} is not declared for judge {judge!r}, attribute {attribute!r} "
                f"(declared: {labels} and {UNKNOWN_LABEL!r})",
                field=where,
            )
        labels_of[str(judge)] = list(labels)
    return labels_of


def _cell_rows(
    cell_keys: dict[str, Any],
    between: Between,
    attribute: str,
    labels: list[str],
    counts: np.ndarray,
    drop: Sequence[str],
    confidence: float,
    test_of: str = "labels",
) -> list[dict[str, Any]]:
    keep = np.array([label not in drop for label in labels])
    kept = counts[:, keep]
    n_a, n_b = int(kept[0].sum()), int(kept[1].sum())
    chi2, dof, p_value, expected = pearson_chi2(kept)
    observed_cols = kept.sum(axis=0) > 0
    small = bool((expected[:, observed_cols] < FISHER_BELOW).any()) and np.isfinite(chi2)
    fisher_p = fisher_exact(kept)[0] if small else None
    p_test = fisher_p if fisher_p is not None else p_value
    diff, low, high = stats.newcombe_interval(counts[0], n_a, counts[1], n_b, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        prop_a, prop_b = counts[0] / n_a, counts[1] / n_b
    cell_id = "\x1f".join([f"{k}={v}" for k, v in cell_keys.items()] + [test_of])
    rows = []
    for i, label in enumerate(labels):
        dropped = not keep[i]
        shares = {
            "prop_a": prop_a[i],
            "prop_b": prop_b[i],
            "diff": diff[i],
            "diff_low": low[i],
            "diff_high": high[i],
        }
        rows.append(
            {
                **{k: _clean(v) for k, v in cell_keys.items()},
                "attribute": attribute,
                "between": between.column,
                "a": between.a,
                "b": between.b,
                "label": label,
                "test_of": test_of,
                "dropped": dropped,
                "count_a": int(counts[0, i]),
                "count_b": int(counts[1, i]),
                "n_a": n_a,
                "n_b": n_b,
                **{k: None if dropped else _clean(v) for k, v in shares.items()},
                "chi2": _clean(chi2),
                "dof": dof,
                "p_value": _clean(p_value),
                "fisher_p": _clean(fisher_p),
                "test": "fisher" if fisher_p is not None else "chi2",
                "_cell": cell_id,
                "_p": np.nan if p_test is None else p_test,
            }
        )
    return rows


def records(result: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a ``compare`` result as JSON-ready dicts (NaN -> None, numpy -> Python)."""
    return [{k: _clean(v) for k, v in row.items()} for row in result.to_dict(orient="records")]


def _clean(value: Any) -> Any:
    """NaN/None -> None; numpy scalars -> Python scalars (JSON-ready)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
