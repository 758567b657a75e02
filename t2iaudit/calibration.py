"""Calibration sets: the CSV format, judging its images, and a judge's confusion matrix (J3).

A calibration set is a CSV of images whose true labels are known (UTF-8, any column order): a
``path`` column (or ``image_path``, relative to the CSV) naming the image, one column per
attribute with its true label (empty: not labelled for that attribute), and, once a judge has
labelled the images, ``judged_<attribute>`` columns with its labels. An audit spec's
``calibration: {judge: truth.csv}`` names the CSV with the true labels; the judge stage runs the
judge on those images once and writes the full file into the run directory
(``calibration/<judge name>-<hash>.csv``, recorded in the manifest's judge entry), which the
metrics stage reads through the judgement table for J3 (``t2iaudit.metrics.judge_validity.correction``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from t2iaudit.errors import InputError
from t2iaudit.types import UNKNOWN, Prompt

if TYPE_CHECKING:
    import numpy as np

    from t2iaudit.judges.base import Judge, JudgeConfig
    from t2iaudit.run.store import RunStore


@dataclass(frozen=True)
class CalibrationSet:
    """Labelled calibration images: true (and, when present, judged) labels per attribute."""

    file: str
    paths: list[str]
    truth: dict[str, list[str | None]]
    """Attribute -> true label per image (None where the cell is empty)."""
    judged: dict[str, list[str | None]]
    """Attribute -> the judge's label per image, from ``judged_<attribute>`` columns."""
    rows: list[int] = field(default_factory=list)
    """The CSV row of each image (the header is row 1)."""
    column: str = "path"
    """The column naming the images (``path`` or ``image_path``)."""

    def pairs(self, attribute: str) -> tuple[np.ndarray, np.ndarray]:
        """``(true, judged)`` label arrays of the images that have both for ``attribute``."""
        if attribute not in self.truth or attribute not in self.judged:
            raise InputError(
                f"needs columns {attribute!r} (true label) and 'judged_{attribute}' (the judge's label)",
                file=self.file,
            )
        import numpy as np

        t, j = self.truth[attribute], self.judged[attribute]
        keep = [i for i in range(len(t)) if t[i] is not None and j[i] is not None]
        return np.array([t[i] for i in keep], dtype=object), np.array([j[i] for i in keep], dtype=object)


def load_calibration(path: str | Path) -> CalibrationSet:
    """Read a calibration CSV (see the module docstring); a UTF-8 BOM is accepted.

    Raises:
        InputError: Missing or unreadable file, bytes that are not UTF-8, no header, no
            ``path`` column, no attribute column, an empty or duplicate path (naming the row;
            the header is row 1).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError("calibration file not found", file=path) from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 text (byte {e.start})", file=path, field=f"row {line}") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise InputError("empty file: expected a header with a 'path' column", file=path)
    key = next((c for c in ("path", "image_path") if c in header), None)
    if key is None:
        raise InputError("missing column 'path' (the calibration image)", file=path, field="column path")
    attrs = [c for c in header if c != key and c and not c.startswith("judged_")]
    if not attrs:
        raise InputError("no attribute column with true labels", file=path)
    paths: list[str] = []
    rows: list[int] = []
    truth: dict[str, list[str | None]] = {a: [] for a in attrs}
    judged: dict[str, list[str | None]] = {c[7:]: [] for c in header if c.startswith("judged_")}
    seen: dict[str, int] = {}
    for rownum, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise InputError(f"{len(row)} cells but {len(header)} columns", file=path, field=f"row {rownum}")
        cells = dict(zip(header, [c.strip() for c in row]))
        image = cells.get(key, "")
        if not image:
            raise InputError("empty image path", file=path, field=f"row {rownum}, column {key}")
        if image in seen:
            raise InputError(
                f"duplicate image (first in row {seen[image]})", file=path, field=f"row {rownum}, column {key}"
            )
        seen[image] = rownum
        paths.append(image)
        rows.append(rownum)
        for a in truth:
            truth[a].append(cells.get(a) or None)
        for a in judged:
            judged[a].append(cells.get(f"judged_{a}") or None)
    if not paths:
        raise InputError("no data rows", file=path)
    return CalibrationSet(str(path), paths, truth, judged, rows, key)


def calibration_images(cal: CalibrationSet) -> list[Path]:
    """The image file of every row, checked before any judging: each path stays inside the
    CSV's folder (``t2iaudit.paths``), exists and is an image file PIL recognises (header only).

    Raises:
        InputError: Naming the CSV, the row and the column.
    """
    from PIL import Image, UnidentifiedImageError

    from t2iaudit.paths import inside

    folder = Path(cal.file).resolve().parent
    out = []
    for i, rel in enumerate(cal.paths):
        where = f"row {cal.rows[i]}, column {cal.column}"
        image = inside(folder, rel, file=cal.file, field=where)
        try:
            with Image.open(image) as im:
                im.size  # noqa: B018 - parsing the header is the check
        except FileNotFoundError:
            raise InputError(f"calibration image {rel!r} not found in {folder}", file=cal.file, field=where) from None
        except (UnidentifiedImageError, OSError, ValueError) as e:
            reason = "not an image file" if isinstance(e, UnidentifiedImageError) else f"unreadable image ({e})"
            raise InputError(f"{rel}: {reason}", file=cal.file, field=where) from None
        out.append(image)
    return out


def confusion_counts(true: np.ndarray, judged: np.ndarray, labels: list[str]) -> np.ndarray:
    """``N[j, k]``: calibration images of true class j judged k (judged ``unknown`` dropped)."""
    import numpy as np

    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, j in zip(true, judged):
        if j != UNKNOWN and t in index and j in index:
            counts[index[t], index[j]] += 1
    return counts


CALIBRATION_PROMPT = Prompt(
    prompt_id="calibration", set_id="calibration", template_id="calibration", text="a photo of a person"
)
"""Calibration images have no prompt; prompt-dependent checks see this neutral text."""


def calibration_file(store: RunStore, config: JudgeConfig) -> Path:
    """Where the judged calibration set of a judge goes in a run directory."""
    return store.path(f"calibration/{config.id}-{config.judge_id().rsplit('#', 1)[1]}.csv")


def calibrate_judge(store: RunStore, config: JudgeConfig, judge: Judge, csv_path: str, batch_size: int) -> Path:
    """Judge the calibration images of ``csv_path`` unless already done; returns the output CSV."""
    from PIL import Image

    from t2iaudit.judges.base import JudgeInput

    out = calibration_file(store, config)
    if out.exists():
        return out
    cal = load_calibration(csv_path)
    images = calibration_images(cal)
    judged: dict[str, dict[int, str]] = {}
    for start in range(0, len(cal.paths), batch_size):
        items = []
        for i in range(start, min(start + batch_size, len(cal.paths))):
            try:
                with Image.open(images[i]) as im:
                    items.append(JudgeInput(str(i), im.convert("RGB"), CALIBRATION_PROMPT))
            except (OSError, ValueError) as e:
                raise InputError(
                    f"cannot read calibration image {images[i]} ({e})",
                    file=csv_path,
                    field=f"row {cal.rows[i]}, column {cal.column}",
                ) from None
        for j in judge.judge(items):
            judged.setdefault(j.attribute, {})[int(j.image_id)] = j.label
    attributes = [a for a in cal.truth if a in judged]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", *attributes, *(f"judged_{a}" for a in attributes)])
    for i, image in enumerate(images):
        row: list[Any] = [str(image)]
        row += [cal.truth[a][i] or "" for a in attributes]
        row += [judged[a].get(i, "") for a in attributes]
        writer.writerow(row)
    store.write_text(out.relative_to(store.root).as_posix(), buf.getvalue())
    return out
