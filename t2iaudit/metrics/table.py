"""The tidy judgement table every metric reads (one row per image x judge x attribute)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from t2iaudit.metrics.columns import (
    assign,
    compact,
    derive_columns,
    image_columns,
    judgement_columns,
    plain,
    prompt_columns,
    same_categories,
)
from t2iaudit.metrics.mapping import EXCLUDED_COLUMNS, apply_mappings, recorded_mappings
from t2iaudit.vocabulary import default_role

TABLE_COLUMNS = (
    "image_id",  # str
    "model_id",  # str
    "prompt_id",  # str
    "replicate",  # int
    "judge_id",  # str, "<name>@<version>#<hash>" or "import:<file>"
    "attribute",  # str, e.g. "gender", "age", "race", "gender.left" (two-person prompts)
    "label",  # str, a declared label or "unknown"
    "set_id",  # str
    "template_id",  # str
    "expected_people",  # int
    "reference",  # str | None: key into JudgementTable.references
)
"""Required columns. Also present: ``requested_<attr>`` for each attribute a prompt states
(NaN/None when it does not), ``slot_<name>`` for slot values, and every key of ``Prompt.meta``
(e.g. ``category``, ``weight``) as its own column."""


@dataclass
class JudgementTable:
    """Judgements joined with image and prompt metadata, plus what metrics need beside them."""

    frame: pd.DataFrame
    """One row per (image, judge, attribute); columns as in TABLE_COLUMNS."""
    label_sets: dict[str, dict[str, list[str]]]
    """Declared labels per judge id and attribute, without ``unknown``: K is ``len`` of this."""
    references: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """Reference distributions: key -> attribute -> label -> probability."""
    roles: dict[str, dict[str, str]] = field(default_factory=dict)
    """Judge id -> attribute -> role (``protected``, ``gate``, ``check``, ``count``,
    ``caption``; see ``t2iaudit.vocabulary``). Attributes without a recorded role get the one
    their name (and labels) imply, so every attribute of ``label_sets`` has one."""
    maps_to: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Judge id -> source attribute -> label mapping (``{to, labels, exclude}``), already applied
    to ``frame`` (``t2iaudit.metrics.mapping.apply_mappings``, called by ``load_table``)."""
    calibration: dict[str, str] = field(default_factory=dict)
    """Judge id -> its judged calibration set in the run directory (J3; ``t2iaudit.calibration``)."""
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(EXCLUDED_COLUMNS)))
    """Images a mapping excluded (their label has no counterpart in the target scheme), one row
    per image and target attribute: see ``t2iaudit.metrics.mapping``."""

    def __post_init__(self) -> None:
        for judge, attrs in self.label_sets.items():
            known = self.roles.setdefault(judge, {})
            for attribute, labels in attrs.items():
                known.setdefault(attribute, default_role(attribute, labels))

    def protected(self, judge_id: str, attribute: str) -> bool:
        """Whether a judge's attribute is a protected attribute (distribution metrics run on it)."""
        role = self.roles.get(judge_id, {}).get(attribute)
        return (role or default_role(attribute, self.label_sets.get(judge_id, {}).get(attribute))) == "protected"


def build_frame(
    judgements: Iterable[dict[str, Any]],
    images: Iterable[dict[str, Any]],
    prompts: list[dict[str, Any]],
    free_text: set[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Join judgement, image and prompt records into the tidy table (see TABLE_COLUMNS).

    Adds ``value`` (numeric attributes: ``scores["value"]``), ``error`` (the failure kind a judge
    recorded in ``raw["error"]``, else None) and ``raw`` (free-text attributes, given as
    (judge_id, attribute) pairs). The full score vectors are not kept (no metric reads them; they
    stay in ``judgements.jsonl``). Records are read one at a time, and ids, labels and prompt
    fields are categoricals (``t2iaudit.metrics.columns``).
    """
    free_text = free_text or set()
    return join_frame(judgement_columns(judgements, free_text), image_columns(images), prompts, free_text)


def join_frame(
    j: pd.DataFrame, im: pd.DataFrame, prompts: list[dict[str, Any]], free_text: set[tuple[str, str]] | None = None
) -> pd.DataFrame:
    """``build_frame`` from judgement and image columns already in data frames: the judgement
    records' fields (image_id, judge_id, attribute, label, scores, raw) or the columns
    ``judgement_columns`` derives from them, and the image records' (image_id, model_id,
    prompt_id, replicate, nsfw_flag), so a large table need not pass through a list of dicts."""
    if "scores" in j.columns:
        j = derive_columns(j, free_text or set())
    else:  # A judgement asked again (a transient API failure retried on a later run) supersedes the earlier one.
        j = j.drop_duplicates(["image_id", "judge_id", "attribute"], keep="last")
    j, im, pr = compact(j), compact(im), compact(prompt_columns(prompts))
    im = same_categories(j, im, "image_id")
    frame = j.merge(im, on="image_id", how="left")
    del j, im
    frame = frame.merge(same_categories(frame, pr, "prompt_id"), on="prompt_id", how="left")
    # A safety checker blacks out flagged images: any label of a black image is noise, so it
    # counts as an abstention with its reason, never as a demographic label.
    blacked = frame["nsfw_flag"].eq(True)
    if blacked.any():
        assign(frame, blacked, "label", UNKNOWN_LABEL)
        assign(frame, blacked, "error", "nsfw_blacked_out")
    first = [c for c in TABLE_COLUMNS if c in frame.columns]
    return compact(frame[first + [c for c in frame.columns if c not in first]])


def load_table(run_dir: str | Path) -> JudgementTable:
    """The judgement table of a run directory, with declared label sets and references."""
    from t2iaudit.promptsets import load_references
    from t2iaudit.run.store import IMAGES, JUDGEMENTS, PROMPTS, RunStore, read_jsonl

    store = RunStore(run_dir)
    manifest = store.read_manifest() or {}
    judges = manifest.get("judges") or {}
    label_sets: dict[str, dict[str, list[str]]] = {
        jid: {a: list(labels) for a, labels in (info.get("attributes") or {}).items()} for jid, info in judges.items()
    }
    roles = {jid: dict(info.get("roles") or {}) for jid, info in judges.items()}
    free_text = {(jid, a) for jid, attrs in label_sets.items() for a, labels in attrs.items() if not labels}
    prompts = store.read(PROMPTS)
    references: dict[str, dict[str, dict[str, float]]] = {}
    shipped = {str(p["reference"]).split("/", 1)[0] for p in prompts if p.get("reference")}
    for name in sorted(shipped):
        references.update(load_references(name))
    tables = manifest.get("reference_tables") or []
    if tables:  # users' own reference tables take precedence for the prompts they list
        from t2iaudit.reference_tables import apply_tables, attribute_label_sets
        from t2iaudit.run.references import load_stored_tables

        prompt_ids = [str(p["prompt_id"]) for p in prompts]
        loaded = load_stored_tables(store.root, tables, attribute_label_sets(label_sets), prompt_ids)
        keys = apply_tables(loaded, {str(p["prompt_id"]): p.get("reference") for p in prompts}, references)
        prompts = [
            {**p, "reference": keys[str(p["prompt_id"])]} if keys.get(str(p["prompt_id"])) else p for p in prompts
        ]
    frame = build_frame(read_jsonl(store.path(JUDGEMENTS)), read_jsonl(store.path(IMAGES)), prompts, free_text)
    maps_to = recorded_mappings(judges, label_sets)
    mapped = apply_mappings(frame, label_sets, JudgementTable(frame, label_sets, roles=roles).roles, maps_to)
    del frame
    calibration = {jid: str(store.path(info["calibration"])) for jid, info in judges.items() if info.get("calibration")}
    return JudgementTable(
        compact(mapped.frame),
        mapped.label_sets,
        references,
        mapped.roles,
        maps_to,
        calibration=calibration,
        excluded=plain(mapped.excluded),
    )


def reference_applies(
    dists: dict[str, dict[str, float]], attribute: str, labels: list[str], judge_id: str = "", name: str = ""
) -> bool:
    """Whether a reference's labels for ``attribute`` are all declared labels (joint: per side).

    A reference with probability on a label the judge does not declare (FairFace labels
    against BIGbench's race groups, without the mapping) cannot be compared without
    renormalising that mass away, so it does not apply; a warning names judge and labels.
    """
    import logging

    sides = [(attribute, labels)]
    if attribute not in dists and "*" in attribute:
        a, b = attribute.split("*", 1)
        sides = [(a, [x.split("*")[0] for x in labels]), (b, [x.split("*", 1)[1] for x in labels])]
    for attr, declared in sides:
        extra = sorted(k for k, p in (dists.get(attr) or {}).items() if p > 0 and k not in set(declared))
        if extra:
            message = (
                f"reference {name or 'table'} of {attr!r} has labels {extra} that judge {judge_id} does not "
                f"declare {sorted(set(declared))}: not compared"
            )
            if message not in _WARNED:
                _WARNED.add(message)
                logging.getLogger("t2iaudit").warning(message)
            return False
    return True


_WARNED: set[str] = set()


# --- Count arrays for the metric families ---------------------------------------------------

UNKNOWN_LABEL = "unknown"
COUNT_KEYS = ("model_id", "judge_id", "attribute")
"""A count group: one model, one judge, one attribute; its rows are prompts."""


@dataclass
class LabelCounts:
    """Label counts of one (model, judge, attribute) group, one row per prompt."""

    model_id: str
    judge_id: str
    attribute: str
    labels: list[str]
    """Declared labels (K of them), in declared order; ``counts`` columns follow it."""
    prompt_ids: list[str]
    """Prompts with at least one judgement in the group, sorted."""
    counts: Any
    """``(P, K + 1)`` int64 array; the last column counts ``unknown``."""


def is_categorical(labels: list[str]) -> bool:
    """Whether an attribute has a declared, non-numeric label set (free text and numbers: no)."""
    if not labels or list(labels) == ["value"]:  # free text, or a number stored as scores["value"]
        return False

    def numeric(s: str) -> bool:
        try:
            float(s)
        except ValueError:
            return False
        return True

    return not all(numeric(str(label)) for label in labels)


def prompt_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Prompt-level columns (reference, weight, requested_*, meta), one row per prompt_id."""
    drop = {"image_id", "judge_id", "attribute", "label", "scores", "raw", "value", "replicate"}
    drop |= {"model_id", "seconds"}
    cols = [c for c in frame.columns if c not in drop]
    return frame[cols].drop_duplicates("prompt_id").set_index("prompt_id").sort_index()


def joint_frame(
    frame: pd.DataFrame,
    label_sets: dict[str, dict[str, list[str]]],
    pairs: list[tuple[str, str]],
    roles: dict[str, dict[str, str]] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, list[str]]]]:
    """Rows of joint attributes ``a*b`` (same judge, same image), for intersectional metrics.

    For a pair (a, b), each judge declaring both gets attribute ``a*b`` with labels ``x*y`` over
    the product of the declared sets (K = K_a K_b); an image is ``unknown`` when either label
    is. Suffixed attributes of two-person prompts pair up too (``gender.left*race.left``).
    With ``roles``, only pairs of protected attributes are joined.

    Returns:
        ``(rows, label_sets)``: rows with columns model_id, judge_id, attribute, prompt_id,
        label, and the declared joint label sets per judge.
    """
    cols = ["image_id", "model_id", "judge_id", "prompt_id", "label"]
    parts: list[pd.DataFrame] = []
    joint_sets: dict[str, dict[str, list[str]]] = {}
    for judge, attrs in label_sets.items():
        for a, b in pairs:
            for attr_a in [x for x in attrs if x == a or x.startswith(a + ".")]:
                attr_b = b + attr_a[len(a) :]
                if attr_b not in attrs or not (is_categorical(attrs[attr_a]) and is_categorical(attrs[attr_b])):
                    continue
                if roles is not None and not (_protected(roles, judge, attr_a) and _protected(roles, judge, attr_b)):
                    continue
                sel = frame["judge_id"] == judge
                left = frame.loc[sel & (frame["attribute"] == attr_a), cols]
                right = frame.loc[sel & (frame["attribute"] == attr_b), ["image_id", "label"]]
                if left.empty or right.empty:
                    continue
                both = left.merge(right, on="image_id", suffixes=("", "_b"))
                unknown = (both["label"] == UNKNOWN_LABEL) | (both["label_b"] == UNKNOWN_LABEL)
                joined = both["label"].astype(str) + "*" + both["label_b"].astype(str)
                both["label"] = joined.where(~unknown, UNKNOWN_LABEL)
                name = f"{attr_a}*{attr_b}"
                both["attribute"] = name
                parts.append(both[["model_id", "judge_id", "attribute", "prompt_id", "label"]])
                joint_sets.setdefault(judge, {})[name] = [f"{x}*{y}" for x in attrs[attr_a] for y in attrs[attr_b]]
    columns = ["model_id", "judge_id", "attribute", "prompt_id", "label"]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return rows, joint_sets


def _protected(roles: dict[str, dict[str, str]], judge: str, attribute: str) -> bool:
    return (roles.get(judge, {}).get(attribute) or default_role(attribute)) == "protected"


def label_counts(
    frame: pd.DataFrame,
    label_sets: dict[str, dict[str, list[str]]],
    roles: dict[str, dict[str, str]] | None = None,
) -> list[LabelCounts]:
    """Per-prompt label counts of every categorical (model, judge, attribute) group.

    One ``groupby`` over the table gives all counts; attributes with an empty or numeric
    declared set are skipped, and so, when ``roles`` are given, are attributes that are not
    protected (gates, checks, counts: see ``t2iaudit.vocabulary``).

    Raises:
        InputError: A judge/attribute has no declared label set, or a label outside it.
    """
    import numpy as np

    from t2iaudit.errors import InputError

    keys = [*COUNT_KEYS, "prompt_id", "label"]
    keep = []
    pairs = frame.groupby(["judge_id", "attribute"], observed=True, sort=False).indices
    for (judge, attribute), rows in pairs.items():
        labels = label_sets.get(judge, {}).get(attribute)
        if labels is None:
            raise InputError(
                f"judge {judge!r} has no declared label set for attribute {attribute!r}",
                field=f"label_sets[{judge}][{attribute}]",
            )
        if roles is not None and not _protected(roles, judge, attribute):
            continue
        if is_categorical(labels):  # free text (captions) and numbers are not counted
            keep.append(rows)
    if not keep:
        return []
    rows = np.sort(np.concatenate(keep))
    grouped = frame[keys].iloc[rows].groupby(keys, observed=True, sort=True).size()
    if grouped.empty:
        return []
    wide = grouped.unstack("label", fill_value=0)
    out: list[LabelCounts] = []
    for (model, judge, attribute), block in wide.groupby(level=list(range(3)), sort=True):
        labels = label_sets[judge][attribute]
        block = block.loc[:, (block != 0).any(axis=0)]
        extra = [c for c in block.columns if c not in labels and c != UNKNOWN_LABEL]
        if extra:
            raise InputError(
                f"label {extra[0]!r} is not declared for judge {judge!r}, attribute "
                f"{attribute!r} (declared: {labels} and {UNKNOWN_LABEL!r})",
                field=f"judge {judge}, attribute {attribute}, label",
            )
        block = block.reindex(columns=[*labels, UNKNOWN_LABEL], fill_value=0)
        out.append(
            LabelCounts(
                model_id=str(model),
                judge_id=str(judge),
                attribute=str(attribute),
                labels=list(labels),
                prompt_ids=[str(p) for p in block.index.get_level_values("prompt_id")],
                counts=np.asarray(block.to_numpy(), dtype=np.int64),
            )
        )
    return out


@dataclass
class ImageCodes:
    """Per-image label codes of several attributes of one judge, for joint (image) resampling."""

    prompt_ids: list[str]
    """Prompts, sorted; ``image_prompt`` indexes into this list."""
    image_prompt: Any
    """``(M,)`` prompt index of each image, ascending (images grouped by prompt)."""
    codes: Any
    """``(M, A)`` code of each image's label per attribute: the declared index, or K for
    ``unknown`` (also when the image has no judgement for the attribute)."""
    attributes: list[str]
    labels: dict[str, list[str]]

    def counts(self, codes: Any = None) -> dict[str, Any]:
        """``{attribute: (..., P, K + 1)}`` label counts per prompt of ``codes (..., M, A)``."""
        import numpy as np

        codes = self.codes if codes is None else codes
        lead = codes.shape[:-2]
        n_prompts = len(self.prompt_ids)
        batch = np.arange(int(np.prod(lead, dtype=np.int64))).reshape(*lead, 1) * n_prompts
        out = {}
        for a, attr in enumerate(self.attributes):
            width = len(self.labels[attr]) + 1
            flat = ((batch + self.image_prompt) * width + codes[..., a]).ravel()
            size = int(np.prod(lead, dtype=np.int64)) * n_prompts * width
            out[attr] = np.bincount(flat, minlength=size).reshape(*lead, n_prompts, width)
        return out


def image_codes(rows: pd.DataFrame, labels: dict[str, list[str]]) -> ImageCodes:
    """Pivot one judge's rows (image_id, prompt_id, attribute, label) to per-image codes.

    Raises:
        InputError: A label outside the attribute's declared set.
    """
    import numpy as np

    from t2iaudit.errors import InputError

    attributes = sorted(labels)
    rows = rows[rows["attribute"].isin(attributes)].drop_duplicates(["image_id", "attribute"], keep="last")
    code = np.empty(len(rows), dtype=np.int64)
    for attr in attributes:
        sel = (rows["attribute"] == attr).to_numpy()
        index = {label: i for i, label in enumerate(labels[attr])}
        index[UNKNOWN_LABEL] = len(labels[attr])
        mapped = rows.loc[sel, "label"].map(index)
        if mapped.isna().any():
            bad = rows.loc[sel, "label"][mapped.isna()].iloc[0]
            raise InputError(
                f"label {bad!r} is not declared for attribute {attr!r} (declared: {labels[attr]})",
                field=f"attribute {attr}, label",
            )
        code[sel] = mapped.to_numpy(dtype=np.int64)
    rows = rows.assign(_code=code)
    wide = rows.pivot(index="image_id", columns="attribute", values="_code")
    wide = wide.reindex(columns=attributes)
    for attr in attributes:  # an image without a judgement for the attribute: unknown
        wide[attr] = wide[attr].fillna(len(labels[attr]))
    prompt_of = rows.drop_duplicates("image_id").set_index("image_id")["prompt_id"]
    prompt_of = prompt_of.reindex(wide.index).astype(str)
    prompt_ids = sorted(prompt_of.unique())
    pidx = prompt_of.map({p: i for i, p in enumerate(prompt_ids)}).to_numpy(dtype=np.int64)
    order = np.argsort(pidx, kind="stable")
    return ImageCodes(
        prompt_ids=prompt_ids,
        image_prompt=pidx[order],
        codes=wide.to_numpy(dtype=np.int64)[order],
        attributes=attributes,
        labels={a: list(labels[a]) for a in attributes},
    )
