"""The ``t2iaudit`` command line: a thin shell over ``t2iaudit.stages`` (heavy imports stay lazy)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from t2iaudit.errors import InputError

app = typer.Typer(
    name="t2iaudit",
    help="Audit text-to-image models for social bias: prompts -> images -> judges -> metrics -> report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def handles_input_errors(fn: F) -> F:
    """Bad input -> one clear line on stderr and exit status 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as e:
            raise fail(str(e)) from None

    return wrapper  # type: ignore[return-value]


class RichProgress:
    """A rich progress bar on stderr; silent when stderr is not a terminal or under --quiet."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def start(self, stage: str, total: int) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.finish()
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(stage, total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _progress(quiet: bool) -> RichProgress:
    return RichProgress(enabled=not quiet and sys.stderr.isatty())


QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars.")


@app.command()
@handles_input_errors
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
    store = run_audit(resolved, run_dir, spec_path=spec.resolve(), progress=_progress(quiet))
    typer.echo(f"run directory: {store.root}")
    typer.echo(f"summary: {store.path('summary.md')}")
    if store.path("report.html").exists():
        typer.echo(f"report: {store.path('report.html')}")


def _stage(run_dir: Path, name: str, quiet: bool) -> None:
    from t2iaudit import stages
    from t2iaudit.runs import load_run

    store, spec = load_run(run_dir)
    progress = _progress(quiet)
    if name == "generate":
        status = stages.generate_images(store, spec, stages.expand_prompts(spec), progress)
    elif name == "judge":
        status = stages.judge_images(store, spec, progress)
    elif name == "metrics":
        status = stages.compute_metrics(store, spec)
    else:
        status = stages.write_report(store)
    typer.echo(f"{name}: {status.new} new, {status.total} in {store.root}")


RUN_DIR = typer.Argument(..., help="An existing run directory (made by `t2iaudit audit`).")


@app.command()
@handles_input_errors
def generate(run_dir: Path = RUN_DIR, quiet: bool = QUIET) -> None:
    """Generate the images a run directory is missing."""
    _stage(run_dir, "generate", quiet)


@app.command()
@handles_input_errors
def judge(run_dir: Path = RUN_DIR, quiet: bool = QUIET) -> None:
    """Judge the images of a run directory that its judges have not labelled yet."""
    _stage(run_dir, "judge", quiet)


@app.command()
@handles_input_errors
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
        from t2iaudit.runs import attach_reference_tables, load_run

        store, _ = load_run(run_dir)
        for entry in attach_reference_tables(store, reference):
            typer.echo(f"reference table {entry['source']} (sha256 {entry['sha256'][:12]}): {entry['prompts']} prompts")
            for warning in entry["warnings"]:
                typer.echo(f"warning: {warning}", err=True)
    _stage(run_dir, "metrics", True)


@app.command("tiny-models")
@handles_input_errors
def tiny_models(folder: Path = typer.Argument(..., help="Where to write the tiny models.")) -> None:
    """Write tiny random-weight models (SD pipeline, CLIPs, VLM, captioner) for offline runs."""
    from t2iaudit.tiny import write_all

    for name, path in write_all(folder).items():
        typer.echo(f"{name}: {path}")


@app.command("list")
@handles_input_errors
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


def _register_extensions() -> None:
    """Commands defined beside their library code (compare, import-labels, judge-fairness, debias, ...)."""
    import importlib

    for module in ("t2iaudit.cli_compare", "t2iaudit.cli_labels", "t2iaudit.cli_debias", "t2iaudit.cli_report"):
        importlib.import_module(module).register(app)


_register_extensions()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
