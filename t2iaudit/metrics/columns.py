"""Compact columns of the judgement table: categorical ids, labels and prompt fields; records read a column at a time.

A table of ten million judgement rows must fit in a few gigabytes. Held as strings, its ids,
labels and prompt fields take about 300 bytes a row; as pandas categoricals (an integer code per
row and each distinct value once) they take one to four. ``compact`` turns them into
categoricals whose categories are sorted, which every reader of the table sees as before:
``==``, ``!=``, ``isin``, ``notna``, ``astype(str)``, iteration and ``tolist`` give the same
values, and ``groupby(sort=True)`` and ``sort_values`` the same order (pandas 3 groups a
categorical by its observed values only). What differs: a categorical cannot take a value outside
its categories (``fillna("")``, ``where`` or ``loc`` assignment of a new value raise; convert with
``astype(str)`` first), and ``value_counts`` lists unused categories with count 0.

``judgement_columns`` and ``image_columns`` read the run's records one at a time into such
columns, so ``load_table`` never holds a list of ten million dicts.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

CATEGORICAL = (
    "image_id",
    "model_id",
    "prompt_id",
    "judge_id",
    "attribute",
    "label",
    "set_id",
    "template_id",
    "reference",
    "prompt_text",
    "error",
    "mapped_from",
)
"""Columns ``compact`` holds as categoricals when they are strings."""
CATEGORICAL_PREFIXES = ("requested_", "slot_", "fixed_")
"""Prompt-field columns ``compact`` holds as categoricals too; other metadata columns (a prompt
set's own ``meta`` keys) keep the dtype pandas gives them."""
RECORD_COLUMNS = ("image_id", "judge_id", "attribute", "label", "scores", "raw")
"""The judgement record fields the table reads."""
IMAGE_COLUMNS = ("image_id", "model_id", "prompt_id", "replicate", "nsfw_flag")
"""The image record fields the table reads."""
_KEYS = ("image_id", "judge_id", "attribute")
"""A judgement asked again supersedes the earlier one: the last record per key counts."""


def categorical_column(name: str) -> bool:
    """Whether ``compact`` holds column ``name`` as a categorical (when its values are strings)."""
    return name in CATEGORICAL or name.startswith(CATEGORICAL_PREFIXES)


def compact(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its id, label and prompt-field columns (``categorical_column``) as categoricals.

    A column of pandas' string dtype becomes a categorical of its sorted distinct values; a
    categorical column gets its categories sorted and trimmed to the values it holds (after a
    relabelling or a concatenation). Other columns are left alone. ``frame`` is not modified.
    """
    out = frame.copy(deep=False)
    for name in out.columns:
        column = out[name]
        if not isinstance(name, str) or not categorical_column(name):
            continue
        if isinstance(column.dtype, pd.StringDtype):
            out[name] = column.astype("category")
        elif isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = _canonical(column)
    return out


def _canonical(column: pd.Series) -> pd.Series:
    """A categorical column with sorted categories, each of them used."""
    codes = column.cat.codes.to_numpy()
    categories = column.cat.categories
    used = np.bincount(codes[codes >= 0], minlength=len(categories)) > 0
    if used.all() and categories.is_monotonic_increasing:
        return column
    column = column.cat.remove_unused_categories()
    if not isinstance(column.cat.categories.dtype, pd.StringDtype):
        return column  # categories of other kinds (numbers, mixed): left as they are
    return column.cat.reorder_categories(column.cat.categories.sort_values())


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its categorical string columns back as strings (for small side tables
    whose readers count values: ``value_counts`` of a categorical lists unused categories)."""
    out = frame.copy(deep=False)
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.CategoricalDtype) and isinstance(column.cat.categories.dtype, pd.StringDtype):
            out[name] = column.astype(str)
    return out


class _Encoder:
    """Integer codes of one column's values, a record at a time (each distinct value kept once)."""

    def __init__(self) -> None:
        self.codes = array("i")
        self.index: dict[str, int] = {}
        self.other: dict[int, Any] = {}
        """Row -> a value that is not a string (malformed records): the column is then built
        as pandas builds it from the values."""

    def add(self, value: Any) -> None:
        if isinstance(value, str):
            code = self.index.get(value)
            if code is None:
                code = self.index[value] = len(self.index)
            self.codes.append(code)
            return
        if value is not None and not (isinstance(value, float) and value != value):
            self.other[len(self.codes)] = value
        self.codes.append(-1)

    def column(self, rows: np.ndarray) -> pd.Categorical | pd.Series:
        """The values of ``rows`` (positions in the order added): a categorical with sorted categories."""
        codes = np.frombuffer(self.codes, dtype=np.intc)[rows]
        values = list(self.index)
        if self.other:
            objects = np.array([*values, None], dtype=object)
            listed = objects[np.where(codes >= 0, codes, len(values))].tolist()
            for i, row in enumerate(rows.tolist()):
                if row in self.other:
                    listed[i] = self.other[row]
            return pd.Series(listed)
        categories = pd.Index(values, dtype="str")
        order = categories.argsort()
        rank = np.empty(len(values) + 1, dtype=np.intc)
        rank[order] = np.arange(len(values), dtype=np.intc)
        rank[-1] = -1  # code -1 (missing) stays missing
        return pd.Categorical.from_codes(rank[codes], categories=categories[order])


def judgement_columns(records: Iterable[dict[str, Any]], free_text: set[tuple[str, str]]) -> pd.DataFrame:
    """Judgement records as the table's judgement columns, read one record at a time.

    Columns: ``image_id``, ``judge_id``, ``attribute``, ``label`` (categoricals), ``value``
    (``scores["value"]``), ``error`` (``raw["error"]``) and ``raw`` (kept for the free-text
    attributes, given as (judge_id, attribute) pairs; None elsewhere), one row per image, judge
    and attribute: a judgement asked again supersedes the earlier record. The same columns, with
    the same dtypes, as ``derive_columns`` gives for the records in a data frame.
    """
    keys = {name: _Encoder() for name in ("image_id", "judge_id", "attribute", "label")}
    image_id, judge_id, attribute, label = keys.values()
    values: dict[int, Any] = {}
    errors: dict[int, Any] = {}
    raws: dict[int, Any] = {}
    n = 0
    for n, r in enumerate(records, start=1):
        row = n - 1
        judge, attr = r.get("judge_id"), r.get("attribute")
        image_id.add(r.get("image_id"))
        judge_id.add(judge)
        attribute.add(attr)
        label.add(r.get("label"))
        scores, raw = r.get("scores"), r.get("raw", np.nan)
        if isinstance(scores, dict) and (value := scores.get("value")) is not None:
            values[row] = value
        if isinstance(raw, dict) and (error := raw.get("error")) is not None:
            errors[row] = error
        if (judge, attr) in free_text:
            raws[row] = raw
    if n == 0:
        return derive_columns(pd.DataFrame([], columns=list(RECORD_COLUMNS)), free_text)
    every = np.arange(n)
    frame = pd.DataFrame({name: keys[name].column(every) for name in _KEYS})
    rows = np.flatnonzero(~frame.duplicated(list(_KEYS), keep="last").to_numpy())
    del frame
    out = pd.DataFrame({name: enc.column(rows) for name, enc in keys.items()})
    out["value"] = _sparse(values, rows)
    out["error"] = _sparse(errors, rows)
    out["raw"] = _sparse(raws, rows)
    return out


def _sparse(at: dict[int, Any], rows: np.ndarray) -> list[Any]:
    """The values ``at`` holds for ``rows`` (ascending positions), None elsewhere, as a list, as
    ``derive_columns`` builds its columns: pandas infers the same dtype from it."""
    out = np.full(len(rows), None, dtype=object)
    if at:
        where = np.fromiter(at, dtype=np.int64, count=len(at))
        pos = np.minimum(np.searchsorted(rows, where), len(rows) - 1)
        for p, hit, value in zip(pos.tolist(), (rows[pos] == where).tolist(), at.values()):
            if hit:  # not a superseded record
                out[p] = value
    return out.tolist()


def derive_columns(j: pd.DataFrame, free_text: set[tuple[str, str]]) -> pd.DataFrame:
    """``judgement_columns`` from the records' fields in a data frame (``RECORD_COLUMNS``)."""
    j = j.drop_duplicates(list(_KEYS), keep="last")
    # Lists, not pandas columns, in the loops: iterating an Arrow-backed column is slow.
    value = [s.get("value") if isinstance(s, dict) else None for s in j["scores"].tolist()]
    raw = j["raw"].tolist()
    keep_raw = pd.MultiIndex.from_arrays([j["judge_id"], j["attribute"]]).isin(list(free_text))
    out = j[["image_id", "judge_id", "attribute", "label"]].copy()
    out["value"] = value
    # Why a judge abstained (API judges record e.g. "not_json", "timeout"): counted by J2.
    out["error"] = [r.get("error") if isinstance(r, dict) else None for r in raw]
    out["raw"] = [r if k else None for r, k in zip(raw, keep_raw.tolist())]
    return out


def image_columns(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Image records as the table's image columns (``IMAGE_COLUMNS``), read one record at a time."""
    ids = {name: _Encoder() for name in ("image_id", "model_id", "prompt_id")}
    rest: dict[str, list[Any]] = {"replicate": [], "nsfw_flag": []}
    for r in records:
        for name, enc in ids.items():
            enc.add(r.get(name))
        for name, listed in rest.items():
            listed.append(r.get(name, np.nan))
    n = len(ids["image_id"].codes)
    if n == 0:
        return pd.DataFrame([], columns=list(IMAGE_COLUMNS))
    every = np.arange(n)
    return pd.DataFrame({**{name: enc.column(every) for name, enc in ids.items()}, **rest})


def prompt_columns(prompts: list[dict[str, Any]]) -> pd.DataFrame:
    """Prompt records as the table's prompt columns, one row per prompt: prompt_id, set_id,
    template_id, expected_people, reference, prompt_text, ``requested_<attr>``, ``slot_<name>`` and
    every ``meta`` key (see ``t2iaudit.metrics.table.TABLE_COLUMNS``)."""
    rows = []
    for p in prompts:
        row = {k: p.get(k) for k in ("prompt_id", "set_id", "template_id", "expected_people", "reference")}
        row["prompt_text"] = p.get("text")
        row.update({f"requested_{k}": v for k, v in (p.get("requested") or {}).items()})
        row.update({f"slot_{k}": v for k, v in (p.get("slots") or {}).items()})
        row.update({k: v for k, v in (p.get("meta") or {}).items() if k not in row})
        rows.append(row)
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["prompt_id"])


def same_categories(left: pd.DataFrame, right: pd.DataFrame, key: str) -> pd.DataFrame:
    """``right`` with its categorical ``key`` on ``left``'s categories, so a merge keeps the key
    categorical (keys of different categories merge as strings). Rows of ``right`` whose key
    ``left`` lacks match no row of ``left`` either way: they are dropped."""
    a, b = left[key], right[key]
    if not (isinstance(a.dtype, pd.CategoricalDtype) and isinstance(b.dtype, pd.CategoricalDtype)):
        return right
    if a.cat.categories.equals(b.cat.categories):
        return right
    recoded = pd.Categorical(b, categories=a.cat.categories)
    known = b.isna().to_numpy() | (recoded.codes >= 0)
    return right[known].assign(**{key: recoded[known]})


def assign(frame: pd.DataFrame, rows: pd.Series, column: str, value: str) -> None:
    """``frame.loc[rows, column] = value``, adding ``value`` to a categorical column's categories."""
    col = frame[column]
    if isinstance(col.dtype, pd.CategoricalDtype) and value not in col.cat.categories:
        frame[column] = col.cat.add_categories([value])
    frame.loc[rows, column] = value
