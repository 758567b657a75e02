"""CLI commands over finished runs: ``report``, ``export``, ``sample-for-labelling`` ."""

from __future__ import annotations

from pathlib import Path

import typer

from t2iaudit.cli.app import handles_input_errors

RUN_DIR = typer.Argument(..., help="An existing run directory.")


def report_command(
    run_dir: Path = RUN_DIR,
    max_unknown_rate: float | None = typer.Option(
        None, "--max-unknown-rate", help="A judge answering unknown more often than this is not trustworthy (0.3)."
    ),
    min_kappa: float | None = typer.Option(
        None,
        "--min-kappa",
        help="A judge whose Cohen's kappa with another judge is below this is not trustworthy (0.4).",
    ),
    require_calibration: bool | None = typer.Option(
        None,
        "--require-calibration/--no-require-calibration",
        help="Count a judge without a calibration set as not trustworthy (default: yes).",
    ),
    thumbnails: int | None = typer.Option(
        None, "--thumbnails", help="Contact sheets: thumbnails per prompt and label (4; 0 turns them off)."
    ),
    max_prompts: int | None = typer.Option(None, "--max-prompts", help="Prompts per figure and contact sheet (40)."),
) -> None:
    """Write report.html (self-contained) and summary.md from a run directory; never re-judges.

    Options default to the spec's `report:` section; the flags override it for this report.
    """
    from t2iaudit import stages
    from t2iaudit.report.options import resolve_options
    from t2iaudit.run.lifecycle import load_run

    store, spec = load_run(run_dir)
    options = resolve_options(
        spec.report.model_dump(),
        max_unknown_rate=max_unknown_rate,
        min_kappa=min_kappa,
        require_calibration=require_calibration,
        thumbnails_per_label=thumbnails,
        max_prompts=max_prompts,
    )
    stages.write_report(store, options)
    for name in ("report.html", "summary.md"):
        if store.path(name).exists():
            typer.echo(f"{name.split('.')[0]}: {store.path(name)}")


def export_command(
    run_dir: Path = RUN_DIR,
    fmt: str = typer.Option("csv", "--format", help="csv | parquet"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder to write (default: RUN_DIR/export)."),
) -> None:
    """Write the run's tidy tables (prompts, images, judgements, metrics) as CSV or parquet."""
    from t2iaudit.report.export import export_tables

    for path in export_tables(run_dir, fmt, out):
        typer.echo(str(path))


def sample_command(
    run_dir: Path = RUN_DIR,
    n: int = typer.Option(..., "--n", help="Images to draw."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draw."),
    attributes: list[str] = typer.Option(
        [], "--attribute", "-a", help="Column to label (repeatable; default: every protected attribute)."
    ),
    judge: str | None = typer.Option(None, "--judge", help="Judge whose labels define the strata (default: primary)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder to write (default: RUN_DIR/labelling)."),
) -> None:
    """Draw images stratified by prompt and judged label into a labelling sheet (CSV + HTML).

    The filled-in labels.csv is a calibration set: name it under `calibration:` in an audit spec.
    """
    from t2iaudit.report.labelling import sample_for_labelling

    s = sample_for_labelling(run_dir, n, seed=seed, attributes=attributes or None, judge=judge, out=out)
    typer.echo(f"drew {s.rows} images from {s.strata} strata (prompt x label of {s.judge_id}) into {s.folder}")
    typer.echo(f"fill in {s.folder / 'labels.csv'} ({', '.join(s.attributes)}); look at {s.folder / 'sheet.html'}")


def register(app: typer.Typer) -> None:
    """Add ``report``, ``export`` and ``sample-for-labelling`` to the ``t2iaudit`` app."""
    app.command("report")(handles_input_errors(report_command))
    app.command("export")(handles_input_errors(export_command))
    app.command("sample-for-labelling")(handles_input_errors(sample_command))
