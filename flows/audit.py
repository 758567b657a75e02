"""The ``audit`` flow: one audit through Prefect, from the command line or a schedule.

    python flows/audit.py SPEC --out DIR [--runner threads|dask|ray] [--address ADDR]

With ``--out`` (``out=``) the audit runs into that directory, resuming whatever is there, like
``t2iaudit audit``. Without it (scheduled deployments) each run gets its own directory,
``<outputs>/<spec id>/<start time>/``, in the spec's history (``flows.history``): a run whose
inputs did not change since the last finished run is skipped and says so; otherwise it is
compared with that run and a regression is published (``flows.regression``,
``flows.alerts``). Every run publishes its headline metrics as a table artifact.

The flow's own process is the driver and the one writer of the run directory: it plans, maps
shards over the task runner (``flows.stages``), commits their results, computes the metrics
and writes the report. With no API server configured (``PREFECT_API_URL``) Prefect runs an
embedded one backed by SQLite under ``PREFECT_HOME``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from flows.alerts import headline_rows, post_webhook, regression_markdown, run_paths, watched_values, webhook_payload
from flows.artifacts import publish_headline, publish_regression
from flows.gpu import ensure_limit, limit_name, machine_slots
from flows.history import History, RunEntry, resolve_inputs
from flows.regression import RegressionReport, compare_runs
from flows.runners import KINDS, cluster, runner_options
from flows.stages import generate_stage, judge_stage
from t2iaudit.errors import InputError
from t2iaudit.flow_options import RunnerOptions
from t2iaudit.spec import AuditSpec, load_spec
from t2iaudit.stages import check_inputs, expand_prompts
from t2iaudit.types import Prompt


@task(name="metrics", cache_policy=NO_CACHE, persist_result=False)
def metrics_task(run_dir: str) -> int:
    """Recompute ``metrics.jsonl`` (in the flow's process: metrics are cheap)."""
    from t2iaudit.run.lifecycle import load_run
    from t2iaudit.stages import compute_metrics

    store, spec = load_run(run_dir)
    return compute_metrics(store, spec).total


@task(name="report", cache_policy=NO_CACHE, persist_result=False)
def report_task(run_dir: str, prompts: int) -> int:
    """Mark the run done and write ``summary.md`` and ``report.html``."""
    from t2iaudit.run.lifecycle import load_run
    from t2iaudit.stages import finish_run, write_report

    store, _ = load_run(run_dir)
    finish_run(store, prompts)
    return write_report(store).total


def sharded_stages(run_dir: Path, options: RunnerOptions) -> None:
    """Generation and judging of the run in ``run_dir`` (its prompts written) as shards on the runner
    ``options`` name, committed by this process; then its metrics."""
    ensure_limit(limit_name(), machine_slots())  # this machine's; workers elsewhere create theirs
    with cluster(options) as placement:
        for stage, subflow in (("generate", generate_stage), ("judge", judge_stage)):
            runner: Any = placement.task_runner(stage)  # Prefect types runners by their future type
            subflow.with_options(task_runner=runner)(str(run_dir), options, placement.address)
    metrics_task(str(run_dir))


def run_stages(spec: AuditSpec, spec_path: Path, run_dir: Path, prompts: list[Prompt], options: RunnerOptions) -> None:
    """Every stage of ``spec`` into ``run_dir`` (resuming), shards on the runner ``options`` name."""
    from t2iaudit.run.lifecycle import open_run

    store = open_run(spec, run_dir, spec_path)
    store.write_prompts(prompts)
    sharded_stages(run_dir, options)
    report_task(str(run_dir), len(prompts))
    if not watched_values(run_dir, spec.regression):
        names = ", ".join(w.metric for w in spec.regression.watch)
        get_run_logger().warning(
            f"no pooled value of the watched metrics ({names}) in metrics.jsonl: see regression.watch"
        )


def outcome(spec: AuditSpec, run_dir: Path, status: str, **extra: Any) -> dict[str, Any]:
    """What the flow returns: where the run is and what it did."""
    from t2iaudit.run.store import RunStore

    counts = (RunStore(run_dir).read_manifest() or {}).get("counts", {})
    return {"spec": spec.id, "status": status, **run_paths(run_dir), **counts, **extra}


@flow(name="audit", persist_result=False)
def audit(
    spec: str,
    out: str | None = None,
    runner: str | None = None,
    address: str | None = None,
    outputs: str = "outputs",
) -> Any:
    """Run the audit ``spec`` through Prefect.

    Args:
        spec: Path of the audit spec YAML.
        out: Run directory (resumed when it exists). None: a scheduled run in the spec's history
            under ``outputs``, skipped when nothing changed, compared with the previous run.
        runner: ``threads``, ``dask`` or ``ray`` (default: the spec's ``runner.kind``).
        address: A cluster to join (default: the spec's ``runner.address``; none: a local one).
        outputs: Where scheduled runs go (``<outputs>/<spec id>/<start time>/``).
    """
    spec_path = Path(spec).resolve()
    loaded = load_spec(spec_path)
    options = runner_options(loaded.runner, runner, address)
    prompts = expand_prompts(loaded)
    check_inputs(loaded, prompts)
    if out is not None:
        run_stages(loaded, spec_path, Path(out), prompts, options)
        rows = headline_rows(out, loaded.regression)
        publish_headline(loaded.id, out, rows, f"Audit {loaded.id}: run {Path(out).name}")
        return outcome(loaded, Path(out), "done")
    return scheduled_run(loaded, spec_path, prompts, options, History(outputs, loaded.id))


def scheduled_run(
    spec: AuditSpec, spec_path: Path, prompts: list[Prompt], options: RunnerOptions, history: History
) -> Any:
    """A run in the spec's history: skipped when unchanged, else run and compared (module docstring)."""
    from prefect.runtime import flow_run

    from t2iaudit.run import provenance

    logger = get_run_logger()
    inputs = resolve_inputs(spec, prompts)
    for reason in inputs.unresolved:
        logger.info(f"unresolved, so this run cannot be skipped: {reason}")
    last = history.last_finished()
    run_dir = history.new_run()
    started = provenance.now()
    entry = RunEntry(
        run_dir.name, "running", started, inputs.digest, unresolved=inputs.unresolved, flow_run_id=flow_run.id
    )
    if last is not None and not inputs.unresolved and last.digest == inputs.digest:
        history.record(replace(entry, status="skipped", ended=started, same_as=last.run))
        message = f"nothing changed since run {last.run} (finished {last.ended}): generation skipped; its results hold"
        logger.info(message)
        rows = headline_rows(history.path(last), spec.regression)
        publish_headline(spec.id, history.path(last), rows, f"Audit {spec.id}: skipped, {message}")
        return Completed(name="Skipped", message=message, data=outcome(spec, history.path(last), "skipped"))
    history.record(replace(entry, inputs=inputs.parts))
    try:
        run_stages(spec, spec_path, run_dir, prompts, options)
    except BaseException:
        history.record(replace(entry, status="failed", ended=provenance.now()))
        raise
    report, summary = None, None
    if last is not None:
        try:
            report = compare_runs(history.path(last), run_dir, spec.regression)
        except InputError as e:  # e.g. a judge declares other labels than in the last run
            logger.warning(f"not compared with run {last.run}: {e}")
            summary = {"regressed": None, "error": str(e)}
        else:
            summary = alert(spec, run_dir, report)
    previous = last.run if last else None
    history.record(replace(entry, status="done", ended=provenance.now(), previous=previous, regression=summary))
    compared = f"compared with run {last.run}" if last else "the first run of this spec"
    note = f"Audit {spec.id}: run {run_dir.name}, {compared}"
    publish_headline(spec.id, run_dir, headline_rows(run_dir, spec.regression, report), note)
    result = outcome(spec, run_dir, "done", regressed=bool(report and report.regressed))
    if report is not None and report.regressed:
        return Completed(name="Regressed", message=f"{len(report.moved)} headline metric(s) regressed", data=result)
    return result


def alert(spec: AuditSpec, run_dir: Path, report: RegressionReport) -> dict[str, Any]:
    """Record the comparison in the run directory; on a regression publish it and call the webhook."""
    from t2iaudit.run.store import RunStore

    logger = get_run_logger()
    RunStore(run_dir).write_text("regression.json", json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    summary: dict[str, Any] = {
        "regressed": report.regressed,
        "metrics": len(report.moved),
        "prompts": len(report.prompts),
    }
    for note in report.notes:
        logger.info(f"regression check: {note}")
    if not report.regressed:
        logger.info(f"no regression against run {Path(report.previous).name}")
        return summary
    paths = run_paths(run_dir)
    publish_regression(spec.id, regression_markdown(spec.id, report, paths))
    moved = ", ".join(f"{m.metric} {m.model_id}/{m.attribute} {m.before:.3f}->{m.after:.3f}" for m in report.moved)
    logger.warning(f"regression against run {Path(report.previous).name}: {moved}")
    if spec.regression.webhook_env:
        sent = post_webhook(spec.regression.webhook_env, webhook_payload(spec.id, report, paths), logger.warning)
        summary["webhook"] = "sent" if sent else "failed"
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python flows/audit.py``: run one audit through the flow and say where everything is."""
    ap = argparse.ArgumentParser(prog="python flows/audit.py", description="Run an audit through the Prefect flow.")
    ap.add_argument("spec", help="audit spec YAML")
    ap.add_argument(
        "--out", help="run directory (default: a new one under --outputs/<spec id>/, compared with the last)"
    )
    ap.add_argument("--outputs", default="outputs", help="root of scheduled runs when --out is not given")
    ap.add_argument("--runner", choices=KINDS, help="where shards run (default: the spec's runner.kind, else threads)")
    ap.add_argument("--address", help="cluster to join (Dask scheduler or Ray address); none: a local cluster")
    args = ap.parse_args(argv)
    try:
        loaded = load_spec(args.spec)  # bad input: one line, exit 2, before Prefect starts
        runner_options(loaded.runner, args.runner, args.address)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    state: State[Any] = audit(  # type: ignore[assignment]  # a sync flow returns the state itself
        spec=args.spec, out=args.out, runner=args.runner, address=args.address, outputs=args.outputs, return_state=True
    )
    from flows.describe import describe_flow_run

    print(describe_flow_run(state))
    return 0 if state.is_completed() else 1


if __name__ == "__main__":  # the process- and Dask-based runners need the guard
    raise SystemExit(main())
