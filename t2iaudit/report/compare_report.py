"""``t2iaudit compare RUN... --report OUT.html``: models or runs side by side, differences first.

The numbers are ``t2iaudit.metrics.compare.compare``'s, rendered as it returns them (rows it
adds, such as a separate unknown-rate row, appear as they are): per cell and label the counts
and proportions of both groups, the difference with its Newcombe interval, the chi-square (or
Fisher) test and the Holm-adjusted p-value. Rows are sorted by the size of the difference, and
the prompts whose label shares differ most are shown with their images from both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.errors import InputError
from t2iaudit.metrics.compare import RESULT_COLUMNS
from t2iaudit.report import figures, fmt
from t2iaudit.report.contact_sheets import Thumb
from t2iaudit.report.figures import Bar, Figure
from t2iaudit.report.options import ReportOptions
from t2iaudit.report.palette import Palette
from t2iaudit.report.rundata import RunData, load_run_data
from t2iaudit.report.thumbnails import Thumbnails

"""Columns of a compare row that are not cell keys."""


class PromptImages(BaseModel):
    """One prompt that differs between the groups, with images from each side."""

    model_config = ConfigDict(frozen=True)

    prompt_id: str
    text: str
    judge: str
    diff: str
    """The largest label difference of the prompt, e.g. ``female -0.50 [-0.8, -0.1]``."""
    a: list[Thumb]
    b: list[Thumb]


class Comparison(BaseModel):
    """One pair of groups and one attribute."""

    model_config = ConfigDict(frozen=True)

    column: str
    a: str
    b: str
    attribute: str
    rows: list[dict[str, Any]]
    """Compare rows, largest difference first, with display strings added."""
    figure: Figure | None = None
    prompts: list[PromptImages] = Field(default_factory=list)
    significant: int = 0
    """Cells whose Holm-adjusted p-value is below alpha."""
    cells: int = 0


def _float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _pairs(names: list[str], datas: list[RunData], between: str | None) -> list[Any]:
    from t2iaudit.metrics.compare import Between

    if between:
        return [Between.parse(between)]
    if len(names) >= 2:
        return [Between("run", names[0], other) for other in names[1:]]
    models = datas[0].models
    if len(models) < 2:
        raise InputError(
            "nothing to compare: one run with one model; give two runs or --between COL=A,B", field="--between"
        )
    return [Between("model_id", models[0], other) for other in models[1:]]


def _display(row: dict[str, Any], alpha: float) -> dict[str, Any]:
    p = _float(row.get("p_holm"))
    out = dict(row)
    out["cell"] = ", ".join(
        f"{k}={fmt.short_judge(str(v)) if k.startswith('judge') else v}"
        for k, v in row.items()
        if k not in RESULT_COLUMNS
    )
    out["side_a"] = f"{row.get('count_a')}/{row.get('n_a')}" + (
        f" ({fmt.pct(row['prop_a'])})" if _float(row.get("prop_a")) is not None else ""
    )
    out["side_b"] = f"{row.get('count_b')}/{row.get('n_b')}" + (
        f" ({fmt.pct(row['prop_b'])})" if _float(row.get("prop_b")) is not None else ""
    )
    out["diff_text"] = (
        "left out"
        if row.get("dropped")
        else (f"{fmt.num(row.get('diff'))} {fmt.interval(row.get('diff_low'), row.get('diff_high'))}".strip())
    )
    out["significant"] = p is not None and p < alpha
    return out


def _thumbs(frame: Any, files: dict[tuple[str, str], Path], thumbs: Thumbnails, k: int) -> list[Thumb]:
    out = []
    for _, r in frame.head(k).iterrows():
        run = str(r.get("run", ""))
        path = files.get((run, str(r["image_id"])))
        if path is not None:
            out.append(
                Thumb(
                    url=thumbs.url(path),
                    image_id=str(r["image_id"]),
                    caption=str(r["label"]),
                    alt=f"image {r['image_id']}, judged {r['label']}",
                )
            )
    return out


def build_comparisons(
    run_dirs: Sequence[str | Path],
    *,
    between: str | None = None,
    attributes: Sequence[str] = (),
    by: Sequence[str] = (),
    drop: Sequence[str] = (),
    options: ReportOptions | None = None,
) -> tuple[list[Comparison], list[str]]:
    """The comparisons of a compare report, and notes on what was skipped."""
    from t2iaudit.metrics.compare import RUN_COLUMN, compare, load_runs

    options = options or ReportOptions()
    table = load_runs(run_dirs)
    names = [Path(d).resolve().name for d in run_dirs]
    datas = [load_run_data(d, require_metrics=False) for d in run_dirs]
    files = {(name, image_id): path for name, d in zip(names, datas) for image_id, path in d.image_files.items()}
    frame = table.frame
    if RUN_COLUMN not in frame.columns:
        frame = frame.assign(**{RUN_COLUMN: names[0]})
    if attributes:
        attrs, explicit = list(attributes), True
    else:
        present = set(frame["attribute"].unique())
        attrs = [a for d in datas for a in d.protected_attributes if a in present]
        attrs, explicit = list(dict.fromkeys(attrs)), False
    if not attrs:
        raise InputError("no protected attribute to compare; name one with --attribute", field="--attribute")
    palette = Palette()
    thumbs = Thumbnails(options.thumbnail_px, options.jpeg_quality)
    out, notes = [], []
    for pair in _pairs(names, datas, between):
        for attribute in attrs:
            try:
                result = compare(table, pair, attribute, by=list(by), drop=list(drop))
            except InputError as e:
                if explicit:
                    raise
                notes.append(f"{attribute}, {pair.column}={pair.a} vs {pair.b}: not compared ({e.message})")
                continue
            out.append(_comparison(table, frame, files, pair, attribute, result, by, drop, palette, thumbs, options))
    return out, notes


def _comparison(table, frame, files, pair, attribute, result, by, drop, palette, thumbs, options) -> Comparison:
    from t2iaudit.metrics.compare import compare, records

    rows = records(result)
    rows.sort(key=lambda r: (_float(r.get("diff")) is None, -abs(_float(r.get("diff")) or 0.0)))
    shown = [_display(r, options.alpha) for r in rows]
    cells = {(r["cell"]) for r in shown}
    significant = len({r["cell"] for r in shown if r["significant"]})
    bars = [r for r in shown if _float(r.get("diff")) is not None][:30]
    figure = None
    if bars:
        figure = figures.diverging(
            f"diff-{pair.column}-{pair.a}-{pair.b}-{attribute}".replace("/", "-"),
            f"{attribute}: {pair.a} minus {pair.b}, share per label",
            [
                Bar(
                    name=f"{r['label']} ({r['cell']})" if len(cells) > 1 else str(r["label"]),
                    value=_float(r["diff"]),
                    ci_low=_float(r.get("diff_low")),
                    ci_high=_float(r.get("diff_high")),
                    colour=palette[str(r["label"])],
                )
                for r in bars
            ],
            "difference in share (95% Newcombe interval)",
            caption="Largest differences first; a bar whose interval excludes 0 differs at the 5% level before "
            "correction for many cells (the table gives Holm-adjusted p-values).",
        )
    prompts: list[PromptImages] = []
    if "prompt_id" not in by and "prompt_id" in frame.columns:
        per_prompt = records(compare(table, pair, attribute, by=[*by, "prompt_id"], drop=list(drop)))
        best: dict[tuple[str, str], dict[str, Any]] = {}
        for r in per_prompt:
            d = _float(r.get("diff"))
            key = (str(r.get("prompt_id")), str(r.get("judge_id", "")))
            if d is not None and (key not in best or abs(d) > abs(_float(best[key]["diff"]) or 0.0)):
                best[key] = r
        ranked = sorted(best.values(), key=lambda r: -abs(_float(r["diff"]) or 0.0))[: options.top_prompts]
        k = max(options.thumbnails_per_label, 1) * 2
        for r in ranked:
            pid, judge = str(r["prompt_id"]), r.get("judge_id")
            sel = (frame["prompt_id"] == pid) & (frame["attribute"] == attribute)
            if judge is not None:
                sel &= frame["judge_id"] == judge
            side = frame.loc[sel].astype({pair.column: str})
            text = str(side["prompt_text"].iloc[0]) if "prompt_text" in side and len(side) else pid
            prompts.append(
                PromptImages(
                    prompt_id=pid,
                    text=text,
                    judge=fmt.short_judge(str(judge or "")),
                    diff=f"{r['label']} {fmt.num(r['diff'])} {fmt.interval(r.get('diff_low'), r.get('diff_high'))}",
                    a=_thumbs(side[side[pair.column] == pair.a], files, thumbs, k),
                    b=_thumbs(side[side[pair.column] == pair.b], files, thumbs, k),
                )
            )
    return Comparison(
        column=pair.column,
        a=pair.a,
        b=pair.b,
        attribute=attribute,
        rows=shown,
        figure=figure,
        prompts=prompts,
        significant=significant,
        cells=len(cells),
    )


def write_compare_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    between: str | None = None,
    attributes: Sequence[str] = (),
    by: Sequence[str] = (),
    drop: Sequence[str] = (),
    options: ReportOptions | None = None,
) -> Path:
    """Write the comparison report of ``run_dirs`` to ``out`` (one self-contained HTML file).

    Args:
        run_dirs: One run (its models are compared) or several (runs are compared, each
            against the first).
        out: The HTML file to write.
        between: ``COL=A,B`` to compare two given groups instead.
        attributes: Attributes to compare (default: every protected attribute of the runs).
        by: Columns defining the cells (as ``t2iaudit compare --by``).
        drop: Labels left out of the tests.
        options: Report options (alpha, thumbnails).

    Raises:
        InputError: Bad runs, groups, attributes or columns (see ``compare``).
    """
    from t2iaudit import __version__
    from t2iaudit.fileio import write_atomic
    from t2iaudit.report.html import render

    options = options or ReportOptions()
    comparisons, notes = build_comparisons(
        run_dirs, between=between, attributes=attributes, by=by, drop=drop, options=options
    )
    html = render(
        "compare.html.j2",
        version=__version__,
        thumb_px=options.thumbnail_px,
        options=options,
        runs=[str(d) for d in run_dirs],
        comparisons=comparisons,
        notes=notes,
    )
    path = Path(out)
    write_atomic(path, html.encode("utf-8"))
    return path
