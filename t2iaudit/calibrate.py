"""Run a judge on its labelled calibration images, for the J3 error-corrected distributions.

The result is ``calibration/<judge name>-<hash>.csv`` in the run directory: the calibration
CSV's ``path`` and true-label columns plus a ``judged_<attribute>`` column per attribute the
judge answers, which ``t2iaudit.metrics.calibration`` reads. It is written once per judge id
(atomically), so resumed and re-run audits do not judge the calibration images again.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from PIL import Image

from t2iaudit.errors import InputError
from t2iaudit.judges.base import Judge, JudgeConfig, JudgeInput
from t2iaudit.metrics.calibration import load_calibration
from t2iaudit.store import RunStore, write_atomic
from t2iaudit.types import Prompt

CALIBRATION_PROMPT = Prompt(
    prompt_id="calibration", set_id="calibration", template_id="calibration", text="a photo of a person"
)
"""Calibration images have no prompt; prompt-dependent checks see this neutral text."""


def calibration_file(store: RunStore, config: JudgeConfig) -> Path:
    return store.path(f"calibration/{config.id}-{config.judge_id().rsplit('#', 1)[1]}.csv")


def calibrate_judge(store: RunStore, config: JudgeConfig, judge: Judge, csv_path: str, batch_size: int) -> Path:
    """Judge the calibration images of ``csv_path`` unless already done; returns the output CSV."""
    out = calibration_file(store, config)
    if out.exists():
        return out
    cal = load_calibration(csv_path)
    base = Path(csv_path).resolve().parent
    judged: dict[str, dict[int, str]] = {}
    for start in range(0, len(cal.paths), batch_size):
        items = []
        for i in range(start, min(start + batch_size, len(cal.paths))):
            path = base / cal.paths[i]
            try:
                with Image.open(path) as im:
                    items.append(JudgeInput(str(i), im.convert("RGB"), CALIBRATION_PROMPT))
            except (OSError, ValueError) as e:
                raise InputError(
                    f"cannot read calibration image {path} ({e})", file=csv_path, field=f"row {i + 2}, column path"
                ) from None
        for j in judge.judge(items):
            judged.setdefault(j.attribute, {})[int(j.image_id)] = j.label
    attributes = [a for a in cal.truth if a in judged]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", *attributes, *(f"judged_{a}" for a in attributes)])
    for i, p in enumerate(cal.paths):
        row: list[Any] = [str(base / p)]
        row += [cal.truth[a][i] or "" for a in attributes]
        row += [judged[a].get(i, "") for a in attributes]
        writer.writerow(row)
    write_atomic(out, buf.getvalue().encode("utf-8"))
    return out
