"""CLI commands over label tables: ``import-labels`` and ``judge-fairness`` ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, cast

import typer

from t2iaudit.cli.app import handles_input_errors
from t2iaudit.errors import InputError


def import_labels_command(
    file: Path = typer.Argument(..., help="CSV, TSV or JSONL of labels: image_id, model_id, prompt_id, attributes."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create (must not hold a run)."),
    maps: list[str] = typer.Option(
        [], "--map", "-m", help="attribute:raw=label, repeatable; '*' ends a prefix wildcard (gender:f*=female)."
    ),
    label_map: Path | None = typer.Option(None, "--label-map", help="YAML label map {attribute: {raw: label}}."),
    attributes: list[str] = typer.Option(
        [], "--attribute", "-a", help="Attribute column (repeatable); default: mapped and known attribute columns."
    ),
    judge: str | None = typer.Option(
        None, "--judge", help="Judge name (id import:NAME); the same name for files of the same annotators."
    ),
    labels: list[str] = typer.Option(
        [], "--labels", help="ATTR=L1,L2,... declared labels of a custom attribute (repeatable)."
    ),
    reference: list[Path] = typer.Option(
        [], "--reference", help="Reference table CSV: prompt_id, attribute, label, share (repeatable; D10/D11)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Build a run directory from labels made elsewhere, so metrics, compare and report work on them.

    Attributes of the vocabulary take their canonical labels; abstention words (unclear, n/a,
    no person, ...) become unknown and are counted; other values need --map (docs/labels.md).
    """
    from t2iaudit.labels.importer import (
        import_labels,
        load_label_map,
        merge_maps,
        parse_labels_options,
        parse_map_options,
    )

    mapping = merge_maps(parse_map_options(maps), load_label_map(label_map) if label_map else {})
    declared = parse_labels_options(labels)
    summary = import_labels(
        file, out, label_map=mapping, attributes=attributes or None, judge=judge, labels=declared, references=reference
    )
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
        return
    typer.echo(
        f"imported {summary.images} images, {summary.prompts} prompts, models {', '.join(summary.models)} "
        f"into {summary.out} (judge {summary.judge_id})"
    )
    for attribute, labels in summary.attributes.items():
        counts = summary.label_counts.get(attribute, {})
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        typer.echo(f"  {attribute}: declared {labels}; labels: {shown}")
        abstained = summary.abstentions.get(attribute) or {}
        if abstained:
            values = ", ".join(f"{k!r} x{v}" for k, v in list(abstained.items())[:10])
            typer.echo(f"  {attribute}: {sum(abstained.values())} abstentions -> unknown ({values})")
        if summary.empty.get(attribute):
            typer.echo(f"  {attribute}: {summary.empty[attribute]} empty cells -> unknown")


def judge_fairness_command(
    table: Path = typer.Argument(..., help="CSV, TSV or JSONL with one row per scored image."),
    score: str = typer.Option(..., "--score", help="Column with the judge's score."),
    group: str = typer.Option(..., "--group", help="Column naming the content item whose variants are compared."),
    normalize: str = typer.Option("minmax", "--normalize", help="minmax (over the whole table) or none."),
    weighting: str = typer.Option("group", "--weighting", help="group (each group equal) or item (by size)."),
    by: str | None = typer.Option(None, "--by", help="Report separately for each value of this column."),
    tolerance: float = typer.Option(0.1, "--tolerance", help="ACC: largest score gap counted as equal."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples over groups (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
) -> None:
    """MJ-Bench judge fairness (ACC, NDS, GES, x100) of a score across demographic variants."""
    import pandas as pd

    from t2iaudit.labels.files import read_rows
    from t2iaudit.metrics.judge_validity.fairness import judge_fairness_report

    if normalize not in ("minmax", "none"):
        raise InputError(f"--normalize must be minmax or none, not {normalize!r}", field="--normalize")
    if weighting not in ("item", "group"):
        raise InputError(f"--weighting must be item or group, not {weighting!r}", field="--weighting")
    required = (score, group) + ((by,) if by else ())
    _, rows, _ = read_rows(table, required)
    frame = pd.DataFrame([r.values for r in rows])
    values = pd.to_numeric(frame[score].replace("", None), errors="coerce")
    bad = frame[score].notna() & (frame[score] != "") & values.isna()
    if bad.any():
        where = rows[int(bad.to_numpy().nonzero()[0][0])].where
        raise InputError(f"{frame[score][bad].iloc[0]!r} is not a number", file=table, field=f"{where}, column {score}")
    frame[score] = values
    try:
        report = judge_fairness_report(
            frame,
            score,
            group,
            by=by,
            normalize=cast(Literal["minmax", "none"], normalize),  # checked above
            weighting=cast(Literal["item", "group"], weighting),
            tolerance=tolerance,
            resamples=resamples,
            seed=seed,
        )
    except ValueError as e:
        raise InputError(str(e), file=table, field=f"column {score}") from None
    typer.echo(json.dumps(report, indent=2, sort_keys=True))


def register(app: typer.Typer) -> None:
    """Add ``import-labels`` and ``judge-fairness`` to the ``t2iaudit`` app."""
    app.command("import-labels")(handles_input_errors(import_labels_command))
    app.command("judge-fairness")(handles_input_errors(judge_fairness_command))
