"""The human-labelling loop: draw images to label by hand; the filled sheet is a calibration set.

``sample_for_labelling`` draws a sample stratified by prompt and judged label (seeded): the
strata are (prompt, label the stratifying judge gave), and images are taken from the strata in
turn, so rare labels and every prompt are represented even in a small sample. It writes:

- ``labels.csv``: a ``path`` column (relative to the CSV) and one empty column per attribute.
  Filled in, it is exactly the calibration CSV that J3 reads
  (``t2iaudit.calibration.load_calibration``): name it under ``calibration:`` in an
  audit spec, and the judge stage measures the judge's confusion matrix on it;
- ``images/``: copies of the sampled images, so the folder can go to annotators as it is;
- ``sheet.html``: a contact sheet with each image's row number and path, and the labels to use
  (no judged label and no prompt text is shown, so annotators are not anchored by them);
- ``key.csv``: which image each row is (image id, model, prompt, stratum), for the auditor.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from t2iaudit.errors import InputError
from t2iaudit.report.rundata import RunData, load_run_data

SHEET = "labels.csv"


@dataclass(frozen=True)
class LabellingSample:
    """What ``sample_for_labelling`` drew and wrote."""

    folder: Path
    rows: int
    """Images drawn."""
    strata: int
    """Strata (prompt x judged label) the images were drawn from."""
    attributes: list[str]
    judge_id: str
    """The judge whose labels defined the strata."""
    files: list[Path] = field(default_factory=list)


def _pick_judge(data: RunData, attribute: str, judge: str | None) -> str:
    from t2iaudit.report.primary import choose_primary

    candidates = data.judges_for(attribute)
    if judge is not None:
        found = [j for j in candidates if judge in (j, data.short(j), data.judge_name(j))]
        if not found:
            raise InputError(
                f"judge {judge!r} has no labels of {attribute!r} in this run "
                f"(judges: {', '.join(data.short(j) for j in candidates) or 'none'})",
                field="--judge",
            )
        return found[0]
    primary = choose_primary(data, attribute)
    if primary is None:
        raise InputError(f"no judge answers {attribute!r} in this run", field="--attribute")
    return primary.judge_id


def draw(strata: dict[tuple[str, str], list[str]], n: int, seed: int) -> list[str]:
    """Up to ``n`` image ids, taking one from each stratum in turn (seeded order within and across)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    keys = sorted(strata)
    queues = {k: [strata[k][i] for i in rng.permutation(len(strata[k]))] for k in keys}
    order = [keys[i] for i in rng.permutation(len(keys))]
    picked: list[str] = []
    while len(picked) < n and any(queues[k] for k in order):
        for k in order:
            if queues[k] and len(picked) < n:
                picked.append(queues[k].pop(0))
    return picked


def sample_for_labelling(
    run_dir: str | Path,
    n: int,
    *,
    seed: int = 0,
    attributes: list[str] | None = None,
    judge: str | None = None,
    out: str | Path | None = None,
) -> LabellingSample:
    """Draw ``n`` images stratified by prompt and judged label and write a labelling sheet.

    Args:
        run_dir: The run directory.
        n: Images to draw (fewer when the run has fewer images with files).
        seed: Seed of the draw.
        attributes: Columns to label (default: every protected attribute of the run).
        judge: Judge whose labels of the first attribute define the strata (default: the
            report's primary judge of that attribute).
        out: Folder to write (default ``RUN_DIR/labelling``); an existing sheet is never
            overwritten.

    Raises:
        InputError: ``n`` below 1, an unknown attribute or judge, a run without image files,
            or a folder that already holds a sheet.
    """
    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}", field="--n")
    data = load_run_data(run_dir, require_metrics=False)
    attrs = list(attributes or data.protected_attributes)
    if not attrs:
        raise InputError("the run has no protected attribute to label; name one with --attribute", field="--attribute")
    for a in attrs:
        if not data.judges_for(a):
            known = ", ".join(data.protected_attributes) or "none"
            raise InputError(f"no judge answers {a!r} in this run (protected attributes: {known})", field="--attribute")
    folder = Path(out) if out is not None else Path(run_dir) / "labelling"
    if (folder / SHEET).exists():
        raise InputError(
            "already holds a labelling sheet; choose another --out (a filled sheet is never overwritten)",
            file=folder / SHEET,
        )
    if not data.image_files:
        raise InputError(
            "no image files in the run directory (imported labels?): nothing to show annotators", file=run_dir
        )
    judge_id = _pick_judge(data, attrs[0], judge)
    frame = data.table.frame
    rows = frame[(frame["judge_id"] == judge_id) & (frame["attribute"] == attrs[0])]
    label_of = dict(zip(rows["image_id"].astype(str), rows["label"].astype(str)))
    strata: dict[tuple[str, str], list[str]] = {}
    record = {str(im["image_id"]): im for im in data.images}
    for image_id in data.image_files:
        key = (str(record[image_id]["prompt_id"]), label_of.get(image_id, "(not judged)"))
        strata.setdefault(key, []).append(image_id)
    picked = draw(strata, n, seed)
    return _write(data, folder, picked, attrs, judge_id, label_of, len(strata))


def _write(
    data: RunData,
    folder: Path,
    picked: list[str],
    attrs: list[str],
    judge_id: str,
    label_of: dict[str, str],
    n_strata: int,
) -> LabellingSample:
    from t2iaudit.fileio import write_atomic
    from t2iaudit.report.html import render
    from t2iaudit.report.thumbnails import Thumbnails

    record = {str(im["image_id"]): im for im in data.images}
    (folder / "images").mkdir(parents=True, exist_ok=True)
    sheet, key = io.StringIO(), io.StringIO()
    sheet_w, key_w = csv.writer(sheet, lineterminator="\n"), csv.writer(key, lineterminator="\n")
    sheet_w.writerow(["path", *attrs])
    key_w.writerow(
        ["row", "path", "image_id", "model_id", "prompt_id", "prompt_text", "stratum_judge", "stratum_label"]
    )
    thumbs = Thumbnails(px=256, quality=80)
    cards = []
    for i, image_id in enumerate(picked, start=2):  # row numbers as a spreadsheet shows them (header is row 1)
        source = data.image_files[image_id]
        rel = f"images/{source.name}"
        shutil.copyfile(source, folder / rel)
        im = record[image_id]
        sheet_w.writerow([rel, *([""] * len(attrs))])
        key_w.writerow(
            [
                i,
                rel,
                image_id,
                im.get("model_id"),
                im.get("prompt_id"),
                data.prompt_text(str(im.get("prompt_id"))),
                data.short(judge_id),
                label_of.get(image_id, ""),
            ]
        )
        cards.append({"row": i, "path": rel, "url": thumbs.url(source)})
    options = {a: sorted({lab for j in data.judges_for(a) for lab in data.labels(j, a)}) + ["unknown"] for a in attrs}
    html = render(
        "labelling.html.j2",
        version=_version(),
        thumb_px=256,
        run_id=data.run_id,
        cards=cards,
        attributes=attrs,
        options=options,
    )
    files = [folder / SHEET, folder / "key.csv", folder / "sheet.html"]
    write_atomic(files[1], key.getvalue().encode("utf-8"))
    write_atomic(files[2], html.encode("utf-8"))
    write_atomic(files[0], sheet.getvalue().encode("utf-8"))  # last: its presence means the folder is complete
    return LabellingSample(
        folder=folder, rows=len(picked), strata=n_strata, attributes=attrs, judge_id=judge_id, files=files
    )


def _version() -> str:
    from t2iaudit import __version__

    return __version__
