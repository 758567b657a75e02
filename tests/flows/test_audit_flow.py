"""The audit flow under Prefect's test harness gives exactly the in-process audit's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.helpers import BALANCED, fake_spec, lines


def _sorted_lines(run: Path, name: str) -> list[str]:
    return sorted((run / name).read_text().splitlines())


def _flow_logs(flow_run_id: Any, expect: str, timeout: float = 20.0) -> list[str]:
    """Log messages of a flow run and its subflow runs (logs reach the API in batches)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )
        ids = [flow_run_id, *(r.id for r in children)]
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), limit=200)
            messages = [log.message for log in logs]
            if any(expect in m for m in messages) or time.monotonic() > deadline:
                return messages
            time.sleep(0.5)


def test_the_flow_on_the_smoke_spec_gives_the_cli_audits_records(
    prefect_harness, report_smoke_run, tmp_path, monkeypatch
):
    import logging

    from prefect.client.orchestration import get_client

    from flows.audit import audit
    from flows.gpu import limit_name

    out = tmp_path / "smoke"
    flow_runs = logging.getLogger("prefect.flow_runs")
    monkeypatch.setattr(flow_runs, "level", logging.INFO)  # the suite runs at WARNING; progress is INFO
    state = audit(spec=str(REPO / "audits" / "smoke.yaml"), out=str(out), return_state=True)
    assert state.is_completed(), state
    result = state.result()
    assert result["status"] == "done" and result["run_dir"] == str(out.resolve())
    assert result["summary"].endswith("summary.md") and Path(result["report"]).is_file()

    for name in ("images.jsonl", "judgements.jsonl", "metrics.jsonl"):  # committed in any order
        assert _sorted_lines(out, name) == _sorted_lines(report_smoke_run, name), name
    assert len(lines(out, "images.jsonl")) == 12
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done" and {s["status"] for s in manifest["stages"].values()} == {"done"}
    assert {t["shard"] for t in lines(out, "timings.jsonl") if t["stage"] == "generate"} == {
        f"generate/tiny-sd/{i:05d}" for i in range(3)
    }

    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(limit_name())  # created, so strict acquisition works
        assert limit.limit >= 1
        [headline] = [
            a for a in client.read_artifacts() if a.key == "smoke-headline" and a.flow_run_id == result_id(state)
        ]
    rows = json.loads(headline.data) if isinstance(headline.data, str) else headline.data
    assert rows and {r["metric"] for r in rows} == {"D9_tv"} and {r["model"] for r in rows} == {"tiny-sd"}
    assert str(out.resolve() / "summary.md") in headline.description

    messages = _flow_logs(result_id(state), "images/s")
    assert any("generate/tiny-sd/00000: 4 images in" in m and "images/s" in m for m in messages), messages


def result_id(state: Any) -> Any:
    return state.state_details.flow_run_id


def test_flow_script_runs_an_audit_and_says_where_everything_is(prefect_harness, tmp_path):
    spec = fake_spec(tmp_path, models={"fair": BALANCED}, prompts=2, replicates=2)
    env = {**os.environ, "PREFECT_API_URL": prefect_harness, "PYTHONPATH": str(REPO)}
    script = [sys.executable, str(REPO / "flows" / "audit.py"), str(spec)]
    done = subprocess.run(
        [*script, "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert f"run directory: {tmp_path / 'run'}" in out and "summary: " in out and "flow run: " in out
    assert "artifact: fake-audit-headline (table)" in out and "artifact: fake-audit-generate-progress (progress)" in out
    assert len(lines(tmp_path / "run", "images.jsonl")) == 4

    bad = subprocess.run(
        [*script, "--runner", "threads", "--address", "tcp://127.0.0.1:1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "--address" in bad.stderr


def test_runs_without_out_go_to_the_specs_history_and_an_unchanged_one_is_skipped(prefect_harness, tmp_path):
    from flows.audit import audit
    from flows.describe import describe_flow_run
    from flows.history import History

    spec = fake_spec(tmp_path, models={"fair": BALANCED}, prompts=2, replicates=2)
    first = audit(spec=str(spec), outputs=str(tmp_path / "outputs"), return_state=True)
    second = audit(spec=str(spec), outputs=str(tmp_path / "outputs"), return_state=True)
    assert (first.name, second.name) == ("Completed", "Skipped")
    [done, skipped] = History(tmp_path / "outputs", "fake-audit").entries()
    assert (done.status, skipped.status, skipped.same_as) == ("done", "skipped", done.run)
    assert (
        second.result()["run_dir"] == first.result()["run_dir"] == str(tmp_path / "outputs" / "fake-audit" / done.run)
    )
    text = describe_flow_run(second)
    assert (
        f"run directory: {first.result()['run_dir']}" in text and "nothing changed since the last finished run" in text
    )
    assert "artifact: fake-audit-headline (table)" in text
