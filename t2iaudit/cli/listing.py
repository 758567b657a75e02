"""Commands that show what is shipped and write tiny models: ``list``, ``tiny-models``."""

from __future__ import annotations

from pathlib import Path

import typer

from t2iaudit.cli.app import fail, handles_input_errors


def tiny_models(folder: Path = typer.Argument(..., help="Where to write the tiny models.")) -> None:
    """Write tiny random-weight models (SD pipeline, CLIPs, VLM, captioner) for offline runs."""
    from t2iaudit.tiny import write_all

    for name, path in write_all(folder).items():
        typer.echo(f"{name}: {path}")


def list_things(what: str = typer.Argument(..., help="prompts | judges | generators | metrics")) -> None:
    """List the shipped prompt sets, judges, generator backends or metrics."""
    if what == "prompts":
        from t2iaudit.promptsets import list_prompt_sets

        for row in list_prompt_sets():
            typer.echo("\t".join(str(x) for x in row))
    elif what == "judges":
        from t2iaudit.judges.loader import load_judge_config, shipped_judges

        for name in shipped_judges():
            c = load_judge_config(name)
            typer.echo(f"{name}\t{c.kind}\t{c.judge_id()}\t{c.description.strip()[:80]}")
    elif what == "generators":
        from t2iaudit.generators.registry import GENERATORS

        for name in GENERATORS.names():
            doc = (GENERATORS.get(name).config_model.__doc__ or "").strip().splitlines()[0]
            typer.echo(f"{name}\t{doc}")
    elif what == "metrics":
        from t2iaudit.metrics.catalog import METRICS

        for name in METRICS.names():
            typer.echo(f"{name}\t{METRICS.get(name)}")
    else:
        raise fail(f"cannot list {what!r}: choose prompts, judges, generators or metrics")


def register(app: typer.Typer) -> None:
    """Add ``tiny-models`` and ``list`` to ``app``."""
    app.command("tiny-models")(handles_input_errors(tiny_models))
    app.command("list")(handles_input_errors(list_things))
