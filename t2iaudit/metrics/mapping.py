"""Label mappings applied to the judgement table: every metric family sees canonical labels.

A judge attribute with a mapping (``maps_to`` in the manifest's judge entry: a judge YAML's own,
or a scheme mapping of ``t2iaudit.vocabulary`` such as ``race_fairface`` -> ``race``) yields rows
of the target attribute, with the same judge id and the mapped labels:

- mapped onto another attribute (``race_fairface`` -> ``race``): the source rows stay and
  derived rows of the target are added (column ``mapped_from`` names the source);
- mapped onto itself (a judge answering ``race`` with ``Indian`` for ``South Asian``): the rows
  are relabelled in place.

Images whose label has no counterpart (FairFace's ``Latino_Hispanic``, ``Southeast Asian``,
``Middle Eastern`` for BIGbench's ``race``) get no target row: they go to
``JudgementTable.excluded``, one row per image, and are reported (``J2_excluded_rate``,
``params.n_excluded`` of H4) instead of being counted as ``unknown``. The target's declared
labels are the canonical labels the mapping reaches.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd

from t2iaudit.vocabulary import LabelMapping, default_role, scheme_mapping

EXCLUDED_COLUMNS = ("image_id", "model_id", "prompt_id", "judge_id", "attribute", "source_attribute", "label")
"""Columns of ``JudgementTable.excluded``: ``attribute`` is the target, ``label`` the source label."""


def empty_excluded() -> pd.DataFrame:
    return pd.DataFrame(columns=list(EXCLUDED_COLUMNS))


def recorded_mappings(
    judges: dict[str, dict[str, Any]], label_sets: dict[str, dict[str, list[str]]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Judge id -> source attribute -> mapping record, from a manifest's judge entries.

    A judge entry written before mappings were recorded has no ``maps_to``: the vocabulary's
    scheme mappings apply to its attributes by name.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for judge, attrs in label_sets.items():
        info = judges.get(judge) or {}
        if "maps_to" in info:
            maps = {a: dict(m) for a, m in (info.get("maps_to") or {}).items()}
        else:
            maps = {}
            for attribute, labels in attrs.items():
                m = scheme_mapping(attribute, labels)
                if m is not None:
                    maps[attribute] = m.as_dict()
        if maps:
            out[judge] = maps
    return out


class Mapped(NamedTuple):
    """A judgement table's parts after ``apply_mappings``."""

    frame: pd.DataFrame
    label_sets: dict[str, dict[str, list[str]]]
    roles: dict[str, dict[str, str]]
    excluded: pd.DataFrame


def apply_mappings(
    frame: pd.DataFrame,
    label_sets: dict[str, dict[str, list[str]]],
    roles: dict[str, dict[str, str]],
    maps_to: dict[str, dict[str, dict[str, Any]]],
    excluded: pd.DataFrame | None = None,
) -> Mapped:
    """Every mapping of ``maps_to`` (judge id -> source attribute -> record) applied to a table's
    rows, declared labels and roles (see the module docstring)."""
    label_sets = {j: dict(a) for j, a in label_sets.items()}
    roles = {j: dict(a) for j, a in roles.items()}
    gone_rows: list[pd.DataFrame] = [excluded] if excluded is not None and len(excluded) else []
    drop = pd.Series(False, index=frame.index)
    added: list[pd.DataFrame] = []
    for judge, maps in sorted(maps_to.items()):
        for source, record in sorted(maps.items()):
            m = LabelMapping.from_dict(source, record)
            label_sets.setdefault(judge, {})[m.target] = m.reachable()
            roles.setdefault(judge, {}).setdefault(m.target, default_role(m.target))
            if frame.empty:
                continue
            sel = (frame["judge_id"] == judge) & (frame["attribute"] == source)
            if not sel.any():
                continue
            rows = frame[sel]
            out = rows["label"].isin(m.excluded)
            if out.any():
                gone = rows.loc[out, ["image_id", "model_id", "prompt_id", "judge_id", "label"]]
                gone_rows.append(gone.assign(attribute=m.target, source_attribute=source)[list(EXCLUDED_COLUMNS)])
            kept = rows[~out].copy()
            kept["label"] = kept["label"].map(lambda x, m=m: m.labels.get(x, x))
            kept["attribute"] = m.target
            kept["mapped_from"] = source
            added.append(kept)
            if m.target == source:
                drop |= sel
    mapped = pd.concat([frame[~drop], *added], ignore_index=True) if added else frame
    return Mapped(mapped, label_sets, roles, pd.concat(gone_rows, ignore_index=True) if gone_rows else empty_excluded())
