"""Where a finished flow run put things: run directory, summary, report, and its artifacts."""

from __future__ import annotations

from typing import Any


def flow_run_artifacts(flow_run_id: Any) -> list[tuple[str, str]]:
    """``(key, type)`` of the artifacts of a flow run and of its subflow runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )
        ids = [flow_run_id, *(r.id for r in children)]
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    return [(a.key or f"(no key) {a.id}", str(a.type)) for a in artifacts]


def describe_flow_run(state: Any) -> str:
    """Lines for the terminal after ``python flows/audit.py``."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    lines = []
    result = state.result(raise_on_failure=False)
    if isinstance(result, dict):
        for name, label in (("run_dir", "run directory"), ("summary", "summary"), ("report", "report")):
            if result.get(name):
                lines.append(f"{label}: {result[name]}")
        if result.get("status") == "skipped":
            lines.append("nothing changed since the last finished run: skipped (its results are above)")
    elif isinstance(result, BaseException):
        lines.append(f"error: {type(result).__name__}: {result}")
    run_id = state.state_details.flow_run_id
    lines.append(f"flow run: {run_id} ({state.name})")
    artifacts = flow_run_artifacts(run_id)
    for key, kind in artifacts:
        lines.append(f"artifact: {key} ({kind})")
    api = PREFECT_API_URL.value()
    if api:
        lines.append(f"see them in the Prefect UI of {api.removesuffix('/api')} or: prefect artifact inspect <key>")
    else:
        database = PREFECT_HOME.value() / "prefect.db"
        lines.append(
            f"see them with: prefect artifact ls / prefect artifact inspect <key> (embedded server, {database}); "
            "or `prefect server start` and open http://127.0.0.1:4200/runs"
        )
    return "\n".join(lines)
