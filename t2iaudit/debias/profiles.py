"""Realisation profiles: how a generator renders requested attributes, and the requests that reach a target.

From an audit of a generator on attribute-stated prompts, ``M[a, k] = P(judged k | requested a)``
(METRICS.md H4, with its unknown column) is measured per attribute; the request proportions
``q`` that bring the judged distribution closest to a target ``t`` are solved by non-negative
least squares on the simplex (VersusDebias' per-model calibration of attribute edits, solved in
closed form instead of searched). Among images with a known label the judged distribution is
``p = sum_a w_a Mv[a]`` with ``Mv`` the rows renormalised over known labels and
``w_a = q_a (1 - u_a) / sum_b q_b (1 - u_b)``; ``w`` is solved on the simplex and mapped back to
``q``. Profiles are versioned JSON files (``format_version``) in ``profiles/`` folders.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from pydantic import Field, ValidationError

from t2iaudit.errors import InputError
from t2iaudit.types import Record

FORMAT_VERSION: Final = 1
PROFILE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
UNSPECIFIED = "unspecified"
PROFILES_ENV = "T2IAUDIT_PROFILES"
"""Extra profile folders (``os.pathsep``-separated), searched before the shipped ``profiles/``."""


class Solution(Record):
    """Request proportions for one target, and what they are expected to give."""

    target: dict[str, float]
    """Target shares over the judged labels."""
    proportions: dict[str, float]
    """Share of items to request per class (rows of M)."""
    reachable: dict[str, float]
    """Expected judged distribution among known labels under ``proportions``."""
    tv: float
    """Total variation distance between ``reachable`` and ``target`` (0: reachable)."""
    unknown_rate: float
    """Expected share of images the judge answers ``unknown``."""


class AttributeProfile(Record):
    """The realisation matrix of one attribute."""

    labels: list[str]
    """The judge's declared labels (columns of the matrix before ``unknown``)."""
    requested: list[str]
    """The requested classes (rows); ``unspecified`` is the prompts that state none."""
    counts: list[list[int]]
    """Images per (requested, judged) with a last column for ``unknown``."""
    matrix: list[list[float]]
    """``counts`` divided by the row totals (the unknown column included)."""
    solved: Solution | None = None
    """Request proportions for the uniform target over ``labels``."""


class Profile(Record):
    """A generator's realisation profile under one judge."""

    format_version: Literal[1] = FORMAT_VERSION
    """Version of this file format."""
    name: str = Field(pattern=PROFILE_NAME.pattern)
    model: dict[str, Any]
    """The audited model: id, reference, revision, generation settings as the run recorded them."""
    judge: dict[str, Any]
    """The judge: id, kind and revision as the run recorded them."""
    attributes: dict[str, AttributeProfile]
    source: dict[str, Any]
    """The run it came from: run id, spec id, directory name, finish time, image counts."""


def _valid_rows(profile: AttributeProfile, rows: Sequence[str] | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    counts = np.asarray(profile.counts, dtype=float)
    known, unknown = counts[:, :-1], counts[:, -1]
    keep = [i for i, r in enumerate(profile.requested) if (rows is None or r in rows) and known[i].sum() > 0]
    if not keep:
        raise InputError("no requested class of the profile has a known label to solve with")
    total = counts[keep].sum(axis=1)
    mv = known[keep] / known[keep].sum(axis=1, keepdims=True)
    return [profile.requested[i] for i in keep], mv, unknown[keep] / total


def solve(profile: AttributeProfile, target: Mapping[str, float], rows: Sequence[str] | None = None) -> Solution:
    """Request proportions over ``rows`` (default: every measured class) that best reach ``target``.

    Args:
        profile: The attribute's realisation matrix.
        target: Shares over the judge's labels (missing labels: 0); must sum to 1.
        rows: The requested classes the plan may use (``unspecified`` only when listed).
    """
    from scipy.optimize import nnls

    unknown_labels = sorted(set(target) - set(profile.labels))
    if unknown_labels:
        raise InputError(f"target classes {unknown_labels} are not labels of the profile ({profile.labels})")
    t = np.array([float(target.get(k, 0.0)) for k in profile.labels])
    if not np.isclose(t.sum(), 1.0) or (t < 0).any():
        raise InputError("target shares must be >= 0 and sum to 1")
    names, mv, u = _valid_rows(profile, rows)
    weight = 100.0  # the sum-to-one row, weighted so the constraint holds to ~1e-6
    a = np.vstack([mv.T, weight * np.ones(len(names))])
    w, _ = nnls(a, np.append(t, weight))
    w = w / w.sum()
    q = w / np.maximum(1.0 - u, 1e-12)
    q = q / q.sum()
    reach = mv.T @ w
    return Solution(
        target={k: float(v) for k, v in zip(profile.labels, t)},
        proportions={k: round(float(v), 6) for k, v in zip(names, q)},
        reachable={k: round(float(v), 6) for k, v in zip(profile.labels, reach)},
        tv=round(float(0.5 * np.abs(reach - t).sum()), 6),
        unknown_rate=round(float(q @ u), 6),
    )


# -- building from a run directory -------------------------------------------------------------


def _pick(options: Sequence[str], wanted: str | None, what: str) -> str:
    if wanted is not None:
        hits = [o for o in options if o == wanted or o.split("@")[0] == wanted]
        if len(hits) == 1:
            return hits[0]
        raise InputError(f"{what} {wanted!r} not in the run (has: {', '.join(options) or 'none'})", field=f"--{what}")
    if len(options) != 1:
        raise InputError(f"the run has {len(options)} {what}s ({', '.join(options)}): choose one", field=f"--{what}")
    return options[0]


def attribute_profile(requested: Sequence[Any], judged: Sequence[str], labels: list[str]) -> AttributeProfile:
    """Counts and matrix from aligned requested values (None: ``unspecified``) and judged labels."""
    from t2iaudit.metrics.hallucination.label_rates import realisation_matrix

    req = np.array([UNSPECIFIED if (r is None or r != r) else str(r) for r in requested], dtype=object)
    jud = np.asarray(judged, dtype=object).astype(str)
    values, known = realisation_matrix(req, jud, labels)
    rows = [v for v in labels if v in values] + [v for v in values if v not in labels and v != UNSPECIFIED]
    rows += [UNSPECIFIED] if UNSPECIFIED in values else []
    counts = []
    for r in rows:
        unknown = int(((req == r) & ~np.isin(jud, labels)).sum())
        counts.append([*(int(c) for c in known[values.index(r)]), unknown])
    matrix = [[round(c / max(sum(row), 1), 6) for c in row] for row in counts]
    prof = AttributeProfile(labels=labels, requested=rows, counts=counts, matrix=matrix)
    uniform = {k: 1.0 / len(labels) for k in labels}
    return prof.model_copy(update={"solved": solve(prof, uniform, [r for r in rows if r != UNSPECIFIED] or None)})


def build_profile(
    run_dir: str | Path,
    name: str,
    *,
    model_id: str | None = None,
    judge: str | None = None,
    attributes: Sequence[str] | None = None,
) -> Profile:
    """Measure a profile from an audit run of one model on attribute-stated prompts.

    Args:
        run_dir: The run directory (judged).
        name: The profile's name (its file is ``<name>.json``).
        model_id: The model to profile (default: the run's only model).
        judge: Judge id or name (default: the run's only judge answering the attributes).
        attributes: Attributes to profile (default: every attribute some prompt requests).
    """
    from t2iaudit.metrics.table import load_table

    if not PROFILE_NAME.match(name):
        raise InputError(f"profile name {name!r} must match {PROFILE_NAME.pattern}", field="--name")
    table = load_table(run_dir)
    frame = table.frame
    if frame.empty:
        raise InputError("the run has no judgements", file=run_dir)
    mid = _pick(sorted(frame["model_id"].dropna().unique()), model_id, "model")
    frame = frame[frame["model_id"] == mid]
    wanted = list(attributes or sorted(c[len("requested_") :] for c in frame.columns if c.startswith("requested_")))
    if not wanted:
        raise InputError("no prompt of the run requests an attribute: audit attribute-stated prompts", file=run_dir)
    judges = sorted(j for j in frame["judge_id"].unique() if all(a in table.label_sets.get(j, {}) for a in wanted))
    jid = _pick(judges, judge, "judge")
    out: dict[str, AttributeProfile] = {}
    for attr in wanted:
        col = f"requested_{attr}"
        rows = frame[(frame["judge_id"] == jid) & (frame["attribute"] == attr)]
        if col not in rows.columns or rows[col].isna().all():
            raise InputError(f"no prompt requests {attr!r}", file=run_dir, field="--attribute")
        out[attr] = attribute_profile(list(rows[col]), list(rows["label"]), list(table.label_sets[jid][attr]))
    manifest = json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
    model = {"model_id": mid, **(manifest.get("models") or {}).get(mid, {})}
    judge_info = {
        "judge_id": jid,
        **{
            k: v
            for k, v in (manifest.get("judges") or {}).get(jid, {}).items()
            if k in ("name", "version", "kind", "revision")
        },
    }
    source = {
        "run_id": manifest.get("run_id"),
        "spec_id": (manifest.get("spec") or {}).get("id"),
        "run_dir": Path(run_dir).name,
        "finished": manifest.get("updated"),
        "images": int(frame["image_id"].nunique()),
    }
    return Profile(name=name, model=model, judge=judge_info, attributes=out, source=source)


# -- files ----------------------------------------------------------------------------------


def profile_dirs(extra: Sequence[str | Path] = ()) -> list[Path]:
    """Folders searched for profiles: ``extra``, then ``$T2IAUDIT_PROFILES``, then the shipped ones."""
    from t2iaudit.resources import builtin_dir

    dirs = [Path(p) for p in extra]
    dirs += [Path(p) for p in os.environ.get(PROFILES_ENV, "").split(os.pathsep) if p]
    try:
        dirs.append(builtin_dir("profiles"))
    except FileNotFoundError:
        pass
    return dirs


def read_profile(path: Path) -> Profile:
    try:
        return Profile.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"not a valid profile: {str(e).splitlines()[0]}", file=path) from None


def load_profile(name: str, dirs: Sequence[Path]) -> Profile:
    """The profile ``name`` from the first folder that has it."""
    if not PROFILE_NAME.match(name):
        raise InputError(f"profile name {name!r} must match {PROFILE_NAME.pattern}", field="profile")
    for folder in dirs:
        path = folder / f"{name}.json"
        if path.is_file():
            return read_profile(path)
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.json")})
    raise InputError(f"unknown profile {name!r} (known: {', '.join(known) or 'none'})", field="profile")


def list_profiles(dirs: Sequence[Path]) -> list[Profile]:
    """Every readable profile, the first of each name, sorted by name (unreadable files skipped)."""
    found: dict[str, Profile] = {}
    for folder in dirs:
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                prof = read_profile(path)
            except InputError:
                continue
            found.setdefault(path.stem, prof)
    return [found[k] for k in sorted(found)]


def write_profile(profile: Profile, folder: str | Path) -> Path:
    """Write ``<folder>/<name>.json`` atomically."""
    from t2iaudit.fileio import write_atomic

    path = Path(folder) / f"{profile.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (profile.model_dump_json(indent=2) + "\n").encode("utf-8"))
    return path
