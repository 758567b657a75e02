"""The ``debias-audit`` flow: the closed debiasing loop through Prefect.

    python flows/debias_loop.py SPEC --out DIR [--runner threads|dask|ray] [--address ADDR]

The same loop as ``t2iaudit debias-audit`` (``t2iaudit.debias.closed_loop.run_loop``: audit the
spec's prompts, plan debiased prompts, re-audit them with the parents' seeds, score the pairs,
measure, optionally iterate, write the trade-off), with every audit's generation and judging
sharded over the task runner as in the ``audit`` flow (``flows.audit.sharded_stages``). The flow's
process is the one writer of every run directory; re-running into the same ``--out`` resumes and
makes nothing twice. The trade-off is published as a markdown artifact.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from flows.artifacts import artifact_key
from flows.audit import sharded_stages
from flows.runners import KINDS, runner_options
from t2iaudit.debias.closed_loop import RunStages, loop_options, loop_summary, run_loop
from t2iaudit.errors import InputError
from t2iaudit.flow_options import RunnerOptions
from t2iaudit.spec import load_spec

if TYPE_CHECKING:
    from t2iaudit.run.store import RunStore
    from t2iaudit.spec import AuditSpec
    from t2iaudit.stages.common import Progress
    from t2iaudit.types import Prompt


def flow_stages(options: RunnerOptions) -> RunStages:
    """The loop's ``stages``: each audit's shards on the runner, committed and finished here."""
    from t2iaudit.stages import finish_run

    def stages(store: RunStore, spec: AuditSpec, prompts: list[Prompt], progress: Progress | None) -> None:
        store.write_prompts(prompts)
        sharded_stages(store.root, options)
        finish_run(store, len(prompts))

    return stages


@flow(name="debias-audit", persist_result=False)
def debias_audit(spec: str, out: str, runner: str | None = None, address: str | None = None) -> dict[str, Any]:
    """Run the closed debiasing loop of ``spec`` (its ``debias:`` section) into the loop directory ``out``.

    Args:
        spec: Path of the audit spec YAML (with a ``debias:`` section).
        out: Loop directory (resumed when it exists).
        runner: ``threads``, ``dask`` or ``ray`` (default: the spec's ``runner.kind``).
        address: A cluster to join (default: the spec's ``runner.address``; none: a local one).
    """
    spec_path = Path(spec).resolve()
    loaded = load_spec(spec_path)
    loop_options(loaded)
    options = runner_options(loaded.runner, runner, address)
    tradeoff = run_loop(loaded, out, spec_path=spec_path, stages=flow_stages(options))
    logger = get_run_logger()
    for line in loop_summary(tradeoff):
        logger.info(line)
    root = Path(out)
    create_markdown_artifact(
        markdown=(root / "tradeoff.md").read_text(encoding="utf-8"),
        key=artifact_key(loaded.id, "tradeoff"),
        description=f"Debiasing trade-off of {loaded.id}: {tradeoff.stopped}",
    )
    result: dict[str, Any] = {
        "spec": loaded.id,
        "loop_dir": str(root),
        "tradeoff": str(root / "tradeoff.md"),
        "rounds": len(tradeoff.rounds),
        "stopped": tradeoff.stopped,
    }
    if (root / "report.html").exists():
        result["report"] = str(root / "report.html")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python flows/debias_loop.py``: run the closed loop through the flow and say where it went."""
    ap = argparse.ArgumentParser(prog="python flows/debias_loop.py", description="Run the closed debiasing loop.")
    ap.add_argument("spec", help="audit spec YAML with a debias: section")
    ap.add_argument("--out", required=True, help="loop directory (resumed when it exists)")
    ap.add_argument("--runner", choices=KINDS, help="where shards run (default: the spec's runner.kind, else threads)")
    ap.add_argument("--address", help="cluster to join (Dask scheduler or Ray address); none: a local cluster")
    args = ap.parse_args(argv)
    try:
        loaded = load_spec(args.spec)  # bad input: one line, exit 2, before Prefect starts
        loop_options(loaded)
        runner_options(loaded.runner, args.runner, args.address)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    state: State[Any] = debias_audit(  # a sync flow with return_state returns the state
        spec=args.spec, out=args.out, runner=args.runner, address=args.address, return_state=True
    )
    if not state.is_completed():
        print(f"flow run {state.name}: {state.message}", file=sys.stderr)
        return 1
    for key, value in state.result().items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":  # the process- and Dask-based runners need the guard
    raise SystemExit(main())
