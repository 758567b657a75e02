"""Commands that run stages: ``audit``, ``plan``, and ``generate``/``judge``/``metrics`` on a run."""

from __future__ import annotations

from pathlib import Path

import typer

from t2iaudit.cli.app import QUIET, RUN_DIR, handles_input_errors, progress_bar


def audit(
    spec: Path = typer.Argument(..., help="Audit spec YAML (e.g. audits/smoke.yaml)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default: outputs/<spec id>)."),
    quiet: bool = QUIET,
) -> None:
    """Run a whole audit: expand prompts, generate, judge, compute metrics, write the report.

    Re-running into the same directory resumes: nothing already there is made again.
    """
    from t2iaudit.spec import load_spec
    from t2iaudit.stages import run_audit

    resolved = load_spec(spec)
    run_dir = out or Path("outputs") / resolved.id
    store = run_audit(resolved, run_dir, spec_path=spec.resolve(), progress=progress_bar(quiet))
    typer.echo(f"run directory: {store.root}")
    typer.echo(f"summary: {store.path('summary.md')}")
    if store.path("report.html").exists():
        typer.echo(f"report: {store.path('report.html')}")


def plan(
    spec: Path = typer.Argument(..., help="Audit spec YAML."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default: outputs/<spec id>)."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Print what an audit would do: images and judgements to make (and done), models and judges to
    load, and an estimated time from the throughput earlier runs recorded. Writes nothing."""
    import json

    from t2iaudit.spec import load_spec
    from t2iaudit.stages.plan import plan_audit, render_plan

    resolved = load_spec(spec)
    result = plan_audit(resolved, out or Path("outputs") / resolved.id)
    typer.echo(json.dumps(result.as_dict(), indent=2) if as_json else render_plan(result))


def _stage(run_dir: Path, name: str, quiet: bool) -> None:
    from t2iaudit import stages
    from t2iaudit.run.lifecycle import load_run

    store, spec = load_run(run_dir)
    progress = progress_bar(quiet)
    if name == "generate":
        # The prompts the run recorded: a debias loop's round holds its debiased prompts, not the
        # spec's own, and prompt-set files may have changed since the run began.
        prompts = store.prompts() or stages.expand_prompts(spec)
        status = stages.generate_images(store, spec, prompts, progress)
    elif name == "judge":
        status = stages.judge_images(store, spec, progress)
    elif name == "metrics":
        status = stages.compute_metrics(store, spec)
    else:
        status = stages.write_report(store)
    typer.echo(f"{name}: {status.new} new, {status.total} in {store.root}")


def generate(run_dir: Path = RUN_DIR, quiet: bool = QUIET) -> None:
    """Generate the images a run directory is missing."""
    _stage(run_dir, "generate", quiet)


def judge(run_dir: Path = RUN_DIR, quiet: bool = QUIET) -> None:
    """Judge the images of a run directory that its judges have not labelled yet."""
    _stage(run_dir, "judge", quiet)


def metrics(
    run_dir: Path = RUN_DIR,
    reference: list[Path] = typer.Option(
        [],
        "--reference",
        help="Reference table CSV (prompt_id, attribute, label, share), repeatable: replaces the run's "
        "reference tables, then recomputes (docs/metrics.md, D10/D11).",
    ),
) -> None:
    """Recompute metrics.jsonl from the judgements."""
    if reference:
        from t2iaudit.run.lifecycle import attach_reference_tables, load_run

        store, _ = load_run(run_dir)
        for entry in attach_reference_tables(store, reference):
            typer.echo(f"reference table {entry['source']} (sha256 {entry['sha256'][:12]}): {entry['prompts']} prompts")
            for warning in entry["warnings"]:
                typer.echo(f"warning: {warning}", err=True)
    _stage(run_dir, "metrics", True)


def register(app: typer.Typer) -> None:
    """Add ``audit``, ``plan``, ``generate``, ``judge`` and ``metrics`` to ``app``."""
    app.command("audit")(handles_input_errors(audit))
    app.command("plan")(handles_input_errors(plan))
    app.command("generate")(handles_input_errors(generate))
    app.command("judge")(handles_input_errors(judge))
    app.command("metrics")(handles_input_errors(metrics))
