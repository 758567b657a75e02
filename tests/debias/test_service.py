"""The debias HTTP service: a real uvicorn server on 127.0.0.1, the API key, limits, errors, the CLI's bytes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from t2iaudit.cli import app as cli_app
from t2iaudit.debias.engine import DebiasEngine, EngineSettings
from t2iaudit.debias.profiles import build_profile, write_profile
from t2iaudit.debias.schema import MAX_BATCH, MAX_N, MAX_PROMPT_CHARS
from t2iaudit.service import ServiceSettings, create_app
from tests.debias import simulate

KEY = "test-key-3f9a1c"
AUTH = {"Authorization": f"Bearer {KEY}"}
PLAN = {
    "prompt": "a photo of a nurse",
    "n": 12,
    "seed": 7,
    "attributes": {"gender": {"classes": ["female", "male"], "target": [0.5, 0.5]}},
}


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    run = simulate.write_run(tmp_path_factory.mktemp("sim") / "run", per_row=50)
    folder = tmp_path_factory.mktemp("served-profiles")
    write_profile(build_profile(run, "simgen-face"), folder)
    return folder


@pytest.fixture(scope="module")
def server(minilm, profiles):
    """The service under uvicorn in a thread, on a free loopback port, with the packaged embedder."""
    import uvicorn

    engine = DebiasEngine(EngineSettings(profile_dirs=[str(profiles)]), embedder=minilm)
    app = create_app(engine, ServiceSettings(api_key=KEY, max_body_bytes=200_000))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client
    srv.should_exit = True
    thread.join(10)
    sock.close()


def test_healthz_and_openapi_are_open(server):
    r = server.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.json()["embedder"].startswith("all-MiniLM-L6-v2")
    schema = server.get("/openapi.json").json()
    assert {"/v1/debias/plan", "/v1/debias/plan:batch", "/v1/profiles", "/healthz"} <= set(schema["paths"])
    assert "400" in schema["paths"]["/v1/debias/plan"]["post"]["responses"]


def test_api_key_is_required_compared_and_never_echoed(server):
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": f"Bearer {KEY}x"},
    ):
        r = server.post("/v1/debias/plan", json=PLAN, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert KEY not in r.text
        assert server.get("/v1/profiles", headers=headers).status_code == 401
    assert server.get("/v1/profiles", headers=AUTH).status_code == 200


def test_plan_endpoint_matches_the_cli_byte_for_byte(server):
    r = server.post("/v1/debias/plan", json=PLAN, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["planned_marginals"] == {"gender": {"female": 6, "male": 6}}
    assert len(body["items"]) == 12 and body["abstain_reasons"] == [] and body["config_hash"]
    for item in body["items"]:
        assert item["prompt"] == f"a photo of a {item['assignment']['gender']} nurse"
        sim = item["checks"]["similarity"]
        assert 0.8 < sim["cosine"] < 0.99 and sim["masked_cosine"] > 0.99 and item["checks"]["ok"]
    cli = CliRunner().invoke(
        cli_app, ["debias", PLAN["prompt"], "--n", "12", "--seed", "7", "--target", "gender=female:0.5,male:0.5"]
    )
    assert cli.exit_code == 0, cli.output
    assert cli.output.strip() == r.text
    assert server.post("/v1/debias/plan", json=PLAN, headers=AUTH).text == r.text


def test_batch_and_profiles(server):
    batch = {
        "requests": [
            PLAN,
            {**PLAN, "prompt": "Albert Einstein at a blackboard", "n": 2},
            {**PLAN, "profile": "simgen-face", "n": 10},
        ]
    }
    r = server.post("/v1/debias/plan:batch", json=batch, headers=AUTH)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [len(x["items"]) for x in results] == [12, 2, 10]
    assert results[1]["abstain_reasons"] == ["NAMED_PERSON"]
    assert results[2]["profile"]["name"] == "simgen-face"
    profs = server.get("/v1/profiles", headers=AUTH).json()["profiles"]
    assert [p["name"] for p in profs] == ["simgen-face"]
    assert profs[0]["attributes"]["gender"]["labels"] == ["female", "male"]
    assert str(profs[0]).count("/tmp") == 0  # no server paths leak


@pytest.mark.parametrize(
    "body, status",
    [
        ({**PLAN, "n": MAX_N + 1}, 422),
        ({**PLAN, "n": 0}, 422),
        ({**PLAN, "prompt": "a" * (MAX_PROMPT_CHARS + 1)}, 422),
        ({**PLAN, "attributes": {"height": {}}}, 422),
        ({**PLAN, "attributes": {"gender": {"target": [0.7, 0.7]}}}, 422),
        ({**PLAN, "profile": "../../etc/passwd"}, 422),
        ({**PLAN, "profile": "missing"}, 422),
        ({**PLAN, "surprise": 1}, 422),
    ],
)
def test_limits_and_bad_requests_get_4xx(server, body, status):
    r = server.post("/v1/debias/plan", json=body, headers=AUTH)
    assert r.status_code == status, r.text
    assert "Traceback" not in r.text and isinstance(r.json()["detail"], list)


def test_batch_size_body_size_and_malformed_json(server):
    r = server.post("/v1/debias/plan:batch", json={"requests": [PLAN] * (MAX_BATCH + 1)}, headers=AUTH)
    assert r.status_code == 422
    big = {**PLAN, "prompt": "a nurse", "pad": "x" * 300_000}
    assert server.post("/v1/debias/plan", json=big, headers=AUTH).status_code == 413
    for raw in (b'{"prompt": "a nurse", ', b"not json", b"\xff\xfe"):
        r = server.post("/v1/debias/plan", content=raw, headers={**AUTH, "content-type": "application/json"})
        assert r.status_code == 400 and r.json() == {"detail": "malformed JSON body"}, (raw, r.text)
    unknown_attr = server.post("/v1/debias/plan", json={**PLAN, "attributes": {"height": {}}}, headers=AUTH).json()
    assert unknown_attr["detail"][0]["loc"] == ["body", "attributes", "height"]


def test_a_crash_is_a_generic_500_without_a_trace():
    class Broken(DebiasEngine):
        def plan(self, request):
            raise RuntimeError("secret internals /srv/path")

    with TestClient(create_app(Broken(), ServiceSettings()), raise_server_exceptions=False) as client:
        r = client.post("/v1/debias/plan", json=PLAN)
    assert r.status_code == 500 and r.json() == {"detail": "internal server error"}
    assert "secret" not in r.text and "Traceback" not in r.text


def fuzz(app, max_examples: int = 30) -> tuple[Counter, list[str]]:
    """Run schemathesis over every operation of ``app``'s schema: status counts and check failures."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    statuses: Counter = Counter()
    failures: list[str] = []

    def runner(operation):  # binds one operation per test function
        label = operation.label

        @settings(
            max_examples=max_examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        @given(case=operation.as_strategy())
        def run(case):
            try:
                response = case.call_and_validate(headers=AUTH, checks=checks)
                statuses[(label, response.status_code)] += 1
            except Exception as e:  # collect every failure (a check's, or a crash in-process), report them together
                failures.append(f"{label}: {type(e).__name__}: {str(e)[:300]}")

        return run

    for result in schema.get_all_operations():
        runner(result.ok())()
    return statuses, failures


def test_schemathesis_finds_no_server_error(engine):
    """Fuzz every operation from the OpenAPI schema (in-process ASGI; no embedder, for speed)."""
    statuses, failures = fuzz(create_app(engine, ServiceSettings(api_key=KEY)))
    assert sum(statuses.values()) >= 60
    assert not failures, "\n".join(failures[:10])
    plan_codes = {code for (label, code) in statuses if label == "POST /v1/debias/plan"}
    assert plan_codes and plan_codes <= {200, 400, 413, 422}, statuses


def test_schemathesis_would_report_a_server_error():
    class Broken(DebiasEngine):
        def plan(self, request):
            raise RuntimeError("boom")

    import schemathesis
    from schemathesis.checks import not_a_server_error

    app = create_app(Broken(), ServiceSettings(api_key=KEY))
    _, failures = fuzz(app, max_examples=20)
    # Fuzzed bodies rarely pass validation, so a valid one goes through the same checks too.
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)["/v1/debias/plan"]["POST"]
    with pytest.raises(Exception, match="500|boom|Server error"):
        operation.Case(body=PLAN).call_and_validate(headers=AUTH, checks=[not_a_server_error])
    assert all(f.startswith(("POST /v1/debias/plan", "POST /v1/debias/plan:batch")) for f in failures), failures[:3]


def test_serve_command_starts_uvicorn_on_loopback():
    """``t2iaudit serve`` in a subprocess (no embedder, for a fast start) answers /healthz, then stops."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "PYTHONPATH": str(REPO), "T2IAUDIT_API_KEY": KEY}
    cmd = [sys.executable, "-m", "t2iaudit.cli", "serve", "--port", str(port), "--no-similarity"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, r = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert r is not None and r.status_code == 200 and r.json()["embedder"] is None
        plan = httpx.post(f"http://127.0.0.1:{port}/v1/debias/plan", json=PLAN, timeout=10)
        assert plan.status_code == 401
        ok = httpx.post(f"http://127.0.0.1:{port}/v1/debias/plan", json=PLAN, headers=AUTH, timeout=10)
        assert ok.status_code == 200 and ok.json()["items"][0]["checks"]["similarity"] is None
    finally:
        proc.terminate()
        proc.wait(10)


def test_every_v1_route_refuses_requests_without_the_key(engine):
    """Each route under /v1 (including any added later) depends on the key; /healthz and the
    schema stay open. The key is never in an answer, the schema or the docs page."""
    from fastapi.routing import APIRoute

    app = create_app(engine, ServiceSettings(api_key=KEY))
    routes = [(m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods]
    v1 = [(m, p) for m, p in routes if p.startswith("/v1/")]
    assert len(v1) >= 3
    with TestClient(app) as client:
        for method, path in v1:
            body = {"requests": [PLAN]} if path.endswith(":batch") else PLAN
            for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": KEY}, {"X-API-Key": KEY}):
                r = client.request(method, path, json=body, headers=headers)
                assert r.status_code == 401 and KEY not in r.text, (method, path, headers)
            assert client.request(method, path, json=body, headers=AUTH).status_code == 200, (method, path)
        for path in ("/healthz", "/openapi.json", "/docs"):
            r = client.get(path)
            assert r.status_code == 200 and KEY not in r.text


@pytest.mark.parametrize(
    "body",
    [
        {**PLAN, "prompt": KEY * 200},  # too long
        {**PLAN, "n": KEY},  # not a number
        {**PLAN, "seed": {"key": KEY}},
        {**PLAN, KEY: 1},  # an unknown field named like the key
        {**PLAN, "profile": KEY + "/../x"},
    ],
)
def test_validation_errors_echo_no_input_value(engine, body):
    """422 answers say where and what, never the value sent (it may hold a secret)."""
    with TestClient(create_app(engine, ServiceSettings(api_key=KEY))) as client:
        r = client.post("/v1/debias/plan", json=body, headers=AUTH)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert all(set(d) <= {"type", "loc", "msg"} for d in detail)
    assert KEY not in json.dumps([{k: v for k, v in d.items() if k != "loc"} for d in detail])


def test_the_key_comes_from_the_environment_and_stays_out_of_reprs(engine, monkeypatch):
    monkeypatch.setenv("T2IAUDIT_API_KEY", KEY)
    settings = ServiceSettings.from_env()
    assert settings.api_key == KEY and KEY not in repr(settings) and KEY not in str(settings)
    with TestClient(create_app(engine, settings)) as client:
        assert client.post("/v1/debias/plan", json=PLAN).status_code == 401
        assert client.post("/v1/debias/plan", json=PLAN, headers=AUTH).status_code == 200
    monkeypatch.delenv("T2IAUDIT_API_KEY")
    assert ServiceSettings.from_env().api_key is None  # no key set: the routes are open, as documented


def test_a_crash_logs_the_trace_on_the_server_but_answers_without_it(caplog):
    class Broken(DebiasEngine):
        def plan(self, request):
            raise RuntimeError(f"internal state with {KEY}")

    with TestClient(create_app(Broken(), ServiceSettings(api_key=KEY)), raise_server_exceptions=False) as client:
        r = client.post("/v1/debias/plan", json=PLAN, headers=AUTH)
    assert (r.status_code, r.json()) == (500, {"detail": "internal server error"})
    assert "RuntimeError" in caplog.text  # the operator sees what happened
    assert f"Bearer {KEY}" not in caplog.text  # but not the caller's credentials
