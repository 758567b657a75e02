"""``t2iaudit export``: the run directory's records as tidy tables (CSV for spreadsheets, parquet).

The JSONL files stay the source of truth; these are flat copies, one row per record:

- ``prompts``: one row per prompt; ``requested_<attr>``, ``slot_<name>`` and metadata columns;
- ``images``: one row per image with its prompt text, ``param_<name>`` generation parameters;
- ``judgements``: one row per image, judge and attribute with model and prompt, the label,
  ``score`` (the score of that label, where the judge gives one), and ``scores``/``raw`` as JSON;
- ``metrics``: one row per metric value; every scope key is a column (``model_id``,
  ``judge_id``, ``prompt_id``, ...), ``label``/``reference``/``requested`` from params, and the
  full ``params`` as JSON.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Literal

from t2iaudit.errors import InputError

TABLES = ("prompts", "images", "judgements", "metrics")
Format = Literal["csv", "parquet"]


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def tables(run_dir: str | Path) -> dict[str, Any]:
    """The tidy tables of a run directory as pandas DataFrames (see the module docstring)."""
    import pandas as pd

    from t2iaudit.run.store import IMAGES, JUDGEMENTS, METRICS, PROMPTS, RunStore

    store = RunStore(run_dir)
    if store.read_manifest() is None:
        raise InputError("not a run directory (no manifest.json)", file=run_dir)
    try:
        prompts, images = store.read(PROMPTS), store.read(IMAGES)
        judgements, metrics = store.read(JUDGEMENTS), store.read(METRICS)
    except ValueError as e:
        raise InputError(str(e), file=run_dir) from None
    prompt_rows = []
    for p in prompts:
        row = {
            k: p.get(k)
            for k in ("prompt_id", "set_id", "set_version", "template_id", "text", "expected_people", "reference")
        }
        row |= {f"requested_{k}": v for k, v in (p.get("requested") or {}).items()}
        row |= {f"slot_{k}": v for k, v in (p.get("slots") or {}).items()}
        row |= {k: v for k, v in (p.get("meta") or {}).items() if k not in row}
        prompt_rows.append(row)
    text = {p["prompt_id"]: p.get("text") for p in prompts}
    image_rows = []
    for im in images:
        row = {k: v for k, v in im.items() if k != "params"}
        row["prompt_text"] = text.get(im.get("prompt_id"))
        row |= {
            f"param_{k}": v if not isinstance(v, (dict, list)) else _json(v)
            for k, v in (im.get("params") or {}).items()
        }
        image_rows.append(row)
    where = {im["image_id"]: (im.get("model_id"), im.get("prompt_id")) for im in images}
    judgement_rows = []
    for j in judgements:
        scores = j.get("scores") or {}
        model, prompt = where.get(j["image_id"], (None, None))
        score = scores.get(j.get("label")) if isinstance(scores, dict) else None
        judgement_rows.append(
            {
                "image_id": j["image_id"],
                "model_id": model,
                "prompt_id": prompt,
                "judge_id": j.get("judge_id"),
                "attribute": j.get("attribute"),
                "label": j.get("label"),
                "score": float(score) if isinstance(score, (int, float)) else None,
                "scores": _json(scores),
                "raw": _json(j.get("raw")),
            }
        )
    metric_rows = []
    for m in metrics:
        params = m.get("params") or {}
        row = {"metric": m.get("metric"), "attribute": m.get("attribute")}
        row |= {str(k): v for k, v in (m.get("scope") or {}).items()}
        row |= {k: params.get(k) for k in ("label", "reference", "requested") if k in params}
        row |= {k: m.get(k) for k in ("value", "ci_low", "ci_high", "n", "n_unknown")}
        row["params"] = _json(params)
        metric_rows.append(row)
    out = {
        "prompts": pd.DataFrame(prompt_rows),
        "images": pd.DataFrame(image_rows),
        "judgements": pd.DataFrame(
            judgement_rows,
            columns=[
                "image_id",
                "model_id",
                "prompt_id",
                "judge_id",
                "attribute",
                "label",
                "score",
                "scores",
                "raw",
            ],
        ),
        "metrics": pd.DataFrame(metric_rows),
    }
    out["images"] = _first(out["images"], ["image_id", "model_id", "prompt_id", "replicate", "seed", "path", "sha256"])
    values = ["value", "ci_low", "ci_high", "n", "n_unknown", "params"]
    metrics_first = ["metric", "attribute", "model_id", "judge_id", "prompt_id", "label", "reference", "requested"]
    out["metrics"] = _first(out["metrics"], metrics_first, last=values)
    for frame in out.values():  # parquet needs one type per column: mixed object columns become text
        for col in frame.columns:
            if frame[col].dtype == object and len({type(v) for v in frame[col].dropna()}) > 1:
                frame[col] = frame[col].map(lambda v: None if v is None else str(v))
    return out


def _first(frame: Any, first: list[str], last: tuple[str, ...] | list[str] = ()) -> Any:
    """``frame`` with ``first`` columns leading and ``last`` columns trailing (those present)."""
    head = [c for c in first if c in frame.columns]
    tail = [c for c in last if c in frame.columns and c not in head]
    return frame[head + [c for c in frame.columns if c not in head and c not in tail] + tail]


def export_tables(run_dir: str | Path, fmt: str = "csv", out: str | Path | None = None) -> list[Path]:
    """Write the tidy tables of ``run_dir`` to ``out`` (default ``RUN_DIR/export``).

    Each file is written atomically. Returns the files written.

    Raises:
        InputError: An unknown format or not a run directory.
    """
    from t2iaudit.fileio import write_atomic

    if fmt not in ("csv", "parquet"):
        raise InputError(f"unknown format {fmt!r} (choose csv or parquet)", field="--format")
    frames = tables(run_dir)
    folder = Path(out) if out is not None else Path(run_dir) / "export"
    written = []
    for name in TABLES:
        frame = frames[name]
        buf = io.BytesIO()
        if fmt == "csv":
            buf.write(frame.to_csv(index=False).encode("utf-8"))
        else:
            frame.to_parquet(buf, index=False, engine="pyarrow")
        path = folder / f"{name}.{fmt}"
        write_atomic(path, buf.getvalue())
        written.append(path)
    return written
