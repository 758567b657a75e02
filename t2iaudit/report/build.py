"""Build ``report.html`` and ``summary.md`` of a run directory (the report stage's work)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from t2iaudit.report.options import ReportOptions
from t2iaudit.report.rundata import RunData, load_run_data
from t2iaudit.report.verdict import LIMITATIONS, Verdict, build_verdict

REPORT = "report.html"


def html_available() -> bool:
    """Whether the ``report`` extra (matplotlib, jinja2) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("matplotlib", "jinja2"))


def render_report(data: RunData, verdict: Verdict, options: ReportOptions) -> str:
    """The HTML text of the report (pure apart from reading images for thumbnails)."""
    from t2iaudit import __version__
    from t2iaudit.report.adherence import adherence_section
    from t2iaudit.report.contact_sheets import contact_sheet
    from t2iaudit.report.html import render
    from t2iaudit.report.palette import Palette
    from t2iaudit.report.primary import choose_primary
    from t2iaudit.report.prompt_sets import prompt_set_sections
    from t2iaudit.report.provenance import provenance_section
    from t2iaudit.report.thumbnails import Thumbnails
    from t2iaudit.report.validity import validity_section
    from t2iaudit.report.verdict import prompt_skews

    primaries = [p for a in data.protected_attributes if (p := choose_primary(data, a)) is not None]
    palette = Palette()
    for p in primaries:
        palette.extend(data.labels(p.judge_id, p.attribute))
    sheets: list[Any] = []
    sheets_note = None
    if not data.image_files:
        source = ", ".join(sorted({str(j.get("source") or "") for j in data.judges.values() if j.get("source")}))
        sheets_note = (
            "This run has no image files in its run directory"
            + (f" (its labels were imported from {source})" if source else "")
            + ", so there are no contact sheets. Every other section reads the labels as they are."
        )
    elif options.thumbnails_per_label == 0:
        sheets_note = "Contact sheets are turned off (thumbnails_per_label is 0)."
    else:
        missing = len(data.images) - len(data.image_files)
        if missing:
            sheets_note = f"{missing} of {len(data.images)} images have no readable file in the run directory."
        thumbs = Thumbnails(options.thumbnail_px, options.jpeg_quality)
        by_key = {(r.model_id, r.attribute): r for r in verdict.rows}
        for p in primaries:
            order = {}
            for model in data.models:
                row = by_key.get((model, p.attribute))
                reference = row.reference if row else "uniform"
                order[model] = [s.prompt_id for s in prompt_skews(data, model, p.judge_id, p.attribute, reference)]
                order[model] += [pid for pid in data.prompts if pid not in order[model]]
            sheets.append(contact_sheet(data, p.attribute, p.judge_id, order, thumbs, palette, options))
    counts = {"prompts": len(data.prompts), "images": len(data.images), "judgements": len(data.table.frame)}
    sets = prompt_set_sections(data, primaries, palette, options)
    return render(
        "report.html.j2",
        version=__version__,
        thumb_px=options.thumbnail_px,
        audit_id=data.spec.get("id", data.run_id),
        run_id=data.run_id,
        counts=counts,
        models=data.models,
        n_judges=len(data.judges),
        options=options,
        verdict=verdict,
        palette=[(k, v) for k, v in palette.items() if k != "unknown"] + [("unknown", palette["unknown"])],
        sets=sets,
        adherence=adherence_section(data, {p.attribute: p.judge_id for p in primaries}),
        validity=validity_section(data, palette, options),
        sheets=sheets,
        sheets_note=sheets_note,
        provenance=provenance_section(data),
        limitations=LIMITATIONS,
        short=data.short,
    )


def write_reports(run_dir: str | Path, options: ReportOptions | None = None, *, html: bool = True) -> list[Path]:
    """Write ``report.html`` (when the ``report`` extra is installed) and ``summary.md``.

    Args:
        run_dir: The run directory (it must have ``metrics.jsonl``).
        options: Report options; default: the spec's ``report:`` section.
        html: Also write the HTML report.

    Returns:
        The files written.

    Raises:
        InputError: Not a run directory, or no metrics yet.
    """
    from t2iaudit.report.summary import render_summary
    from t2iaudit.run.store import RunStore

    data = load_run_data(run_dir)
    options = options or data.options()
    verdict = build_verdict(data, options)
    store = RunStore(run_dir)
    written = []
    report_note = None
    if html and html_available():
        store.write_text(REPORT, render_report(data, verdict, options))
        written.append(store.path(REPORT))
    elif html:
        report_note = "report.html was not written: install the report extra (`pip install 't2iaudit[report]'`)."
    from t2iaudit.run.store import SUMMARY

    store.write_text(SUMMARY, render_summary(data, verdict, options, REPORT if written else None, report_note))
    written.append(store.path(SUMMARY))
    return written
