"""Scheduled audits end to end: `prefect server start` on 127.0.0.1, `t2iaudit schedule` serving
the deployment, runs triggered with `run_deployment`, a regression alert reaching a webhook."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import Response

from flows.history import History
from tests.conftest import REPO
from tests.helpers import BALANCED, SKEWED, fake_spec
from tests.servers import serve_app

DEPLOYMENT = "audit/nightly"
CRON = "0 3 * * 1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Any, timeout: float, proc: subprocess.Popen[bytes], log: Path, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            found = check()
        except Exception:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    return {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", **extra}


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` as its own process on 127.0.0.1, with its own PREFECT_HOME."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    log = home / "server.log"
    cmd = [
        str(Path(sys.executable).parent / "prefect"),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-ui",
        "--analytics-off",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=_env(PREFECT_HOME=str(home)), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 180, proc, log, "prefect server")
        yield url
    finally:
        _stop(proc)


class Webhook:
    """A webhook receiver on 127.0.0.1: answers 500 once, then 200; keeps what it was sent."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_first = True

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook/{token}")
        async def hook(token: str, request: Request) -> Response:
            self.calls.append({"token": token, "body": await request.json()})
            if self.fail_first:
                self.fail_first = False
                return Response(status_code=500)
            return Response(status_code=204)

        return app


def _write_spec(folder: Path, mix: dict[str, dict[str, float]]) -> Path:
    regression = {"watch": [{"metric": "D9_tv", "threshold": 0.05}], "webhook_env": "T2IAUDIT_TEST_WEBHOOK"}
    return fake_spec(folder, models={"fake-a": mix}, replicates=25, regression=regression)


def _logs(client: Any, flow_run_ids: list[Any]) -> list[str]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=flow_run_ids))
    )
    ids = [*flow_run_ids, *(r.id for r in children)]
    messages: list[str] = []
    while True:  # every page: three runs log more than one page
        page = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), limit=200, offset=len(messages)
        )
        messages += [log.message for log in page]
        if len(page) < 200:
            return messages


def test_scheduled_runs_compare_alert_and_skip_when_nothing_changed(prefect_server: str, tmp_path: Path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    spec = _write_spec(tmp_path, BALANCED)
    outputs = tmp_path / "outputs"
    secret = f"tok-{uuid.uuid4().hex}"
    hook = Webhook()
    serve_log = tmp_path / "serve.log"
    with serve_app(hook.app()) as hook_url, temporary_settings({PREFECT_API_URL: prefect_server}):
        env = _env(
            PREFECT_API_URL=prefect_server,
            PREFECT_HOME=str(tmp_path / "client-home"),
            PREFECT_RUNNER_POLL_FREQUENCY="1",
            PREFECT_LOGGING_LEVEL="INFO",
            PYTHONPATH=str(REPO),
            T2IAUDIT_TEST_WEBHOOK=f"{hook_url}/hook/{secret}",
        )
        cmd = [
            sys.executable,
            "-m",
            "t2iaudit.cli",
            "schedule",
            str(spec),
            "--cron",
            CRON,
            "--name",
            "nightly",
            "--outputs",
            str(outputs),
        ]
        with serve_log.open("wb") as out:
            serve = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            with get_client(sync_client=True) as client:
                deployment = _wait(
                    lambda: client.read_deployment_by_name(DEPLOYMENT), 120, serve, serve_log, "served deployment"
                )
                assert [s.schedule.cron for s in deployment.schedules] == [CRON]
                assert deployment.parameters == {"spec": str(spec), "outputs": str(outputs)}

                first = run_deployment(DEPLOYMENT, timeout=300, poll_interval=1)
                assert first.state.is_completed() and first.state.name == "Completed", first.state
                _write_spec(tmp_path, SKEWED)  # the model changed: a more skewed label mix
                second = run_deployment(DEPLOYMENT, timeout=300, poll_interval=1)
                assert second.state.is_completed() and second.state.name == "Regressed", second.state
                third = run_deployment(DEPLOYMENT, timeout=300, poll_interval=1)
                assert third.state.is_completed() and third.state.name == "Skipped", third.state

                artifacts = {a.key: a for a in client.read_artifacts() if a.flow_run_id == second.id}
                deadline = time.monotonic() + 30  # a run's last logs reach the API in a batch after it ends
                while True:
                    messages = _logs(client, [first.id, second.id, third.id])
                    if any("nothing changed since run" in m for m in messages) or time.monotonic() > deadline:
                        break
                    time.sleep(1)
                skipped_headline = [a for a in client.read_artifacts() if a.flow_run_id == third.id]
        finally:
            _stop(serve)

    history = History(outputs, "fake-audit")
    entries = history.entries()
    assert [e.status for e in entries] == ["done", "done", "skipped"]
    assert entries[0].regression is None and entries[1].previous == entries[0].run
    assert entries[1].regression is not None and entries[1].regression["webhook"] == "sent"
    assert entries[1].regression["regressed"] and entries[1].regression["metrics"] >= 2
    assert entries[2].same_as == entries[1].run and not (outputs / "fake-audit" / entries[2].run).exists()
    second_dir = history.path(entries[1])

    markdown = artifacts["fake-audit-regression"].data
    assert "| D9_tv | fake-a | gender |" in markdown and "`occupations/photo/" in markdown
    assert (
        "fake-audit-headline" in artifacts
        and str(second_dir / "summary.md") in artifacts["fake-audit-headline"].description
    )
    assert [a.key for a in skipped_headline] == ["fake-audit-headline"] and "skipped" in skipped_headline[0].description

    assert [c["token"] for c in hook.calls] == [secret, secret]  # a 500, then the bounded retry got through
    payload = hook.calls[-1]["body"]
    assert payload["spec_id"] == "fake-audit" and payload["run"]["run_dir"] == str(second_dir)
    assert payload["previous_run"] == str(history.path(entries[0]))
    assert payload["metrics"] and all(m["p_holm"] < 0.05 and m["worse_by"] > 0.05 for m in payload["metrics"])
    assert payload["prompts"] and all(p["prompt_id"].startswith("occupations/") for p in payload["prompts"])
    report = json.loads((second_dir / "regression.json").read_text())
    assert report["regressed"] and report["previous"] == str(history.path(entries[0]))

    assert "webhook $T2IAUDIT_TEST_WEBHOOK: HTTP 500 (attempt 1 of 3)" in messages  # the logs were read
    assert any("nothing changed since run" in m for m in messages)
    for text in [*messages, serve_log.read_text(errors="replace")]:
        assert secret not in text
    for path in outputs.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert yaml.safe_load(spec.read_text())["regression"]["webhook_env"] == "T2IAUDIT_TEST_WEBHOOK"
