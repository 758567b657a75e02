"""The ``debias-audit`` flow under Prefect's test harness gives exactly the CLI loop's records."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO

SPEC = REPO / "audits" / "debias-smoke.yaml"


def _sorted_lines(run: Path, name: str) -> list[str]:
    return sorted((run / name).read_text().splitlines())


def test_the_debias_flow_gives_the_cli_loops_records_and_publishes_the_tradeoff(prefect_harness, tiny_loop, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    from flows.debias_loop import debias_audit
    from t2iaudit.debias.closed_loop import read_tradeoff

    out = tmp_path / "loop"
    state = debias_audit(spec=str(SPEC), out=str(out), return_state=True)
    assert state.is_completed(), state
    result = state.result()
    assert result["rounds"] == 1 and result["report"] == str(out / "report.html")
    assert result["stopped"].startswith("1 round(s) run")

    for run in ("original", "round-1"):  # shards are committed in any order
        for name in ("prompts.jsonl", "images.jsonl", "judgements.jsonl", "metrics.jsonl"):
            assert _sorted_lines(out / run, name) == _sorted_lines(tiny_loop / run, name), (run, name)
    assert read_tradeoff(out).model_dump() == read_tradeoff(tiny_loop).model_dump()
    assert (out / "tradeoff.md").read_text() == (tiny_loop / "tradeoff.md").read_text()

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )
        [artifact] = [
            a for a in client.read_artifacts() if a.key == "debias-smoke-tradeoff" and a.flow_run_id == flow_run_id
        ]
    assert len(children) == 4  # generate and judge subflows (shards on the runner) for the original and round 1
    assert artifact.data.startswith("# Debiasing trade-off") and "1 round(s) run" in artifact.description

    again = debias_audit(spec=str(SPEC), out=str(out), return_state=True)  # resumes: nothing is made twice
    assert again.is_completed(), again
    for run in ("original", "round-1"):
        assert _sorted_lines(out / run, "images.jsonl") == _sorted_lines(tiny_loop / run, "images.jsonl")
