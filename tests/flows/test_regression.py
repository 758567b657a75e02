"""Regression between two runs of one spec, and the alert it makes (no Prefect needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from flows.alerts import headline_rows, post_webhook, regression_markdown, webhook_payload
from flows.regression import compare_runs
from t2iaudit.flow_options import RegressionOptions, RegressionWatch
from tests.helpers import BALANCED, SKEWED, fake_spec
from tests.servers import serve_app


def _run(folder: Path, name: str, mix: dict) -> Path:
    """A fake audit (4 prompts x 25 images) of one model whose label mix is ``mix``."""
    from t2iaudit import stages
    from t2iaudit.run.lifecycle import open_run
    from t2iaudit.spec import load_spec

    spec = load_spec(fake_spec(folder, models={"m": mix}, replicates=25, name=f"{name}.yaml"))
    prompts = stages.expand_prompts(spec)
    store = open_run(spec, folder / name)
    stages.generate_images(store, spec, prompts)
    stages.judge_images(store, spec)
    stages.compute_metrics(store, spec)
    return store.root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("regression")
    return {
        name: _run(folder, name, mix) for name, mix in [("fair", BALANCED), ("fair2", BALANCED), ("skewed", SKEWED)]
    }


def test_a_more_skewed_model_regresses_on_its_headline_metric(runs):
    report = compare_runs(runs["fair"], runs["skewed"], RegressionOptions())
    assert report.regressed
    moved = {(m.attribute, m.reference) for m in report.moved}
    assert ("gender", "uniform") in moved and ("age", "uniform") in moved
    for m in report.moved:
        assert m.metric == "D9_tv" and m.worse_by > 0.05 and m.p_holm < 0.05 and m.after > m.before
    assert report.prompts and all(p.p_holm < 0.05 for p in report.prompts)
    assert [p.p_holm for p in report.prompts] == sorted(p.p_holm for p in report.prompts)
    gender = [p for p in report.prompts if p.attribute == "gender"]
    assert gender and all(p.label in ("female", "male") for p in gender)


def test_identical_runs_and_an_improvement_are_not_regressions(runs):
    same = compare_runs(runs["fair"], runs["fair2"], RegressionOptions())
    assert not same.regressed and same.metrics and all(m.worse_by == 0 for m in same.metrics)
    assert all(m.p_holm is not None and m.p_holm > 0.5 for m in same.metrics)  # same seeds: same labels
    better = compare_runs(runs["skewed"], runs["fair"], RegressionOptions())
    assert not better.regressed and any(m.worse_by < -0.05 and m.p_holm < 0.05 for m in better.metrics)


def test_a_threshold_above_the_change_is_not_a_regression(runs):
    options = RegressionOptions(watch=[RegressionWatch(metric="D9_tv", threshold=0.9)])
    assert not compare_runs(runs["fair"], runs["skewed"], options).regressed


def test_the_alert_names_metrics_and_prompts_and_the_payload_carries_p_values(runs):
    report = compare_runs(runs["fair"], runs["skewed"], RegressionOptions())
    paths = {"run_dir": str(runs["skewed"])}
    text = regression_markdown("fake-audit", report, paths)
    assert "| D9_tv | m | gender |" in text and f"`{report.prompts[0].prompt_id}`" in text
    payload = json.loads(json.dumps(webhook_payload("fake-audit", report, paths)))
    assert payload["spec_id"] == "fake-audit" and payload["run"] == paths
    assert payload["previous_run"] == str(runs["fair"])
    assert {m["metric"] for m in payload["metrics"]} == {"D9_tv"} and all(
        m["p_holm"] < 0.05 for m in payload["metrics"]
    )
    rows = headline_rows(runs["skewed"], RegressionOptions(), report)
    regressed = {(r["attribute"], r["reference"]) for r in rows if r["regressed"] == "yes"}
    assert {("gender", "uniform"), ("age", "uniform")} <= regressed
    assert all(r["previous"] != "-" for r in rows) and len(rows) == len(report.metrics)


class Hook:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.calls: list[dict] = []

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook/{token}")
        async def hook(token: str, request: Request) -> Response:
            self.calls.append({"token": token, "body": await request.json()})
            return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

        return app


def test_the_webhook_is_retried_a_bounded_number_of_times_and_never_logs_its_url(monkeypatch):
    hook = Hook([500, 503])
    with serve_app(hook.app()) as base:
        url = f"{base}/hook/s3cret-token"
        monkeypatch.setenv("TEST_HOOK_URL", url)
        logged: list[str] = []
        assert post_webhook("TEST_HOOK_URL", {"spec_id": "x"}, logged.append, attempts=3, backoff_s=0.01)
        assert [c["token"] for c in hook.calls] == ["s3cret-token"] * 3 and hook.calls[-1]["body"] == {"spec_id": "x"}
        assert logged == [
            "webhook $TEST_HOOK_URL: HTTP 500 (attempt 1 of 3)",
            "webhook $TEST_HOOK_URL: HTTP 503 (attempt 2 of 3)",
        ]

        hook.calls.clear()
        hook.statuses[:] = [400]
        logged.clear()
        assert not post_webhook("TEST_HOOK_URL", {}, logged.append, attempts=3, backoff_s=0.01)
        assert len(hook.calls) == 1  # a client error is not retried

        hook.calls.clear()
        hook.statuses[:] = [502, 502, 502, 502]
        assert not post_webhook("TEST_HOOK_URL", {}, logged.append, attempts=3, backoff_s=0.01)
        assert len(hook.calls) == 3  # bounded
    logged.clear()
    assert not post_webhook("TEST_HOOK_URL", {}, logged.append, attempts=2, backoff_s=0.01)  # server gone
    assert logged == [f"webhook $TEST_HOOK_URL: ConnectError (attempt {i} of 2)" for i in (1, 2)]
    assert all("s3cret" not in line and "127.0.0.1" not in line for line in logged)
    monkeypatch.delenv("TEST_HOOK_URL")
    assert not post_webhook("TEST_HOOK_URL", {}, logged.append)
    assert logged[-1] == "webhook: $TEST_HOOK_URL is not set; no webhook sent"
