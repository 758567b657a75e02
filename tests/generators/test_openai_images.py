"""The ``openai-images`` generator against an OpenAI-compatible images server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image

from t2iaudit.errors import InputError
from t2iaudit.generators.base import GenerationRequest
from t2iaudit.generators.openai_images import ImageApiError, OpenAIImagesConfig, OpenAIImagesGenerator, retry_after
from t2iaudit.types import Prompt
from tests.helpers import FAKE_JUDGE
from tests.servers import serve_app

KEY = "sk-test-secret-123"


class ImagesServer:
    """What the server does next (a script of answers, then successes) and what it was sent."""

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.seen: list[dict[str, Any]] = []

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/images/generations")
        async def generate(request: Request) -> Response:
            body = await request.json()
            self.seen.append({"t": time.monotonic(), "auth": request.headers.get("authorization"), "body": body})
            step = self.script.pop(0) if self.script else "ok"
            if step == "ok":
                colour = (len(body["prompt"]) * 7 % 256, int(body.get("seed", 0)) % 256, 50)
                buf = io.BytesIO()
                Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
                item = {"b64_json": base64.b64encode(buf.getvalue()).decode(), "revised_prompt": body["prompt"] + "!"}
                return JSONResponse({"created": 1700000000, "data": [item]}, headers={"x-request-id": "req-1"})
            if step == "bad-base64":
                return JSONResponse({"data": [{"b64_json": "%%% not base64 %%%"}]})
            if step == "not-an-image":
                return JSONResponse({"data": [{"b64_json": base64.b64encode(b"hello").decode()}]})
            if step == "no-data":
                return JSONResponse({"created": 1})
            status, headers = step
            return JSONResponse({"error": {"message": f"scripted {status}"}}, status_code=status, headers=headers)

        return app


@pytest.fixture(scope="module")
def images_api() -> Iterator[tuple[ImagesServer, str]]:
    server = ImagesServer()
    with serve_app(server.app()) as url:
        yield server, url + "/v1"


@pytest.fixture
def api(images_api: tuple[ImagesServer, str], monkeypatch: pytest.MonkeyPatch) -> tuple[ImagesServer, str]:
    server, url = images_api
    server.script.clear()
    server.seen.clear()
    monkeypatch.setenv("TEST_IMAGES_KEY", KEY)
    return server, url


def _gen(url: str, **options: Any) -> OpenAIImagesGenerator:
    config = OpenAIImagesConfig(base_url=url, model="img-1", size="8x8", api_key_env="TEST_IMAGES_KEY", **options)
    return OpenAIImagesGenerator(config, "closed")


def _requests(n: int) -> list[GenerationRequest]:
    prompts = [Prompt(prompt_id=f"p/{i}", set_id="p", template_id="t", text="x" * (i + 1)) for i in range(n)]
    return [GenerationRequest(p, 0, 1000 + i) for i, p in enumerate(prompts)]


def test_images_come_back_with_their_provenance_and_the_key_stays_out_of_records(api):
    server, url = api
    gen = _gen(url, send_seed=True)
    out = gen.generate(_requests(3))
    assert len(out) == 3 and len(server.seen) == 3
    for i, image in enumerate(out):
        with Image.open(io.BytesIO(image.data)) as im:
            assert im.size == (8, 8) and im.getpixel((0, 0))[0] == (i + 1) * 7 % 256  # the image of its own prompt
        assert image.suffix == ".png"
        assert image.params == {
            "revised_prompt": "x" * (i + 1) + "!",
            "created": 1700000000,
            "request_id": "req-1",
            "attempts": 1,
        }
    assert {s["auth"] for s in server.seen} == {f"Bearer {KEY}"}
    assert sorted(s["body"]["seed"] for s in server.seen) == [1000, 1001, 1002] and gen.seeded
    assert {s["body"]["response_format"] for s in server.seen} == {"b64_json"}
    assert KEY not in repr(gen.params) + repr(gen.describe())
    gen.close()


def test_429_waits_what_retry_after_says(api):
    server, url = api
    server.script[:] = [(429, {"Retry-After": "1"})]
    t0 = time.monotonic()
    [image] = _gen(url, retry_backoff_s=0.0).generate(_requests(1))
    assert time.monotonic() - t0 >= 0.95
    assert image.params["attempts"] == 2 and len(server.seen) == 2
    assert server.seen[1]["t"] - server.seen[0]["t"] >= 0.95


def test_server_errors_are_retried_with_backoff_then_given_up(api):
    server, url = api
    server.script[:] = [(500, {}), (503, {})]
    [image] = _gen(url, retry_backoff_s=0.05).generate(_requests(1))
    assert image.params["attempts"] == 3
    assert server.seen[2]["t"] - server.seen[1]["t"] >= 0.1  # backoff doubles: 0.05, then 0.1

    server.script[:] = [(502, {})] * 3
    with pytest.raises(ImageApiError) as err:
        _gen(url, retry_backoff_s=0.0, max_retries=2).generate(_requests(1))
    assert err.value.transient and err.value.attempts == 3 and "http_502" in str(err.value)


def test_client_errors_are_not_retried(api):
    server, url = api
    server.seen.clear()
    server.script[:] = [(400, {})]
    with pytest.raises(ImageApiError) as err:
        _gen(url, retry_backoff_s=0.0).generate(_requests(1))
    assert not err.value.transient and err.value.kind == "http_400" and len(server.seen) == 1
    assert "scripted 400" in str(err.value) and "'p/0'" in str(err.value) and KEY not in str(err.value)


@pytest.mark.parametrize("answer", ["bad-base64", "not-an-image", "no-data"])
def test_a_malformed_answer_is_an_error_not_an_image(api, answer: str):
    server, url = api
    server.script[:] = [answer]
    with pytest.raises(ImageApiError) as err:
        _gen(url, retry_backoff_s=0.0).generate(_requests(1))
    assert err.value.kind == "bad_response" and not err.value.transient and len(server.seen) == 1


def test_requests_per_minute_spaces_request_starts(api):
    server, url = api
    _gen(url, requests_per_minute=600, concurrency=4).generate(_requests(4))  # one start per 0.1 s
    starts = sorted(s["t"] for s in server.seen)
    assert starts[-1] - starts[0] >= 0.28


def test_retry_after_reads_seconds_and_dates():
    assert retry_after("3") == 3.0 and retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def _spec(folder: Path, url: str, key_env: str) -> Path:
    spec = {
        "id": "closed",
        "replicates": 2,
        "prompts": [{"set": "occupations", "limit": 2}],
        "models": [
            {
                "id": "closed",
                "generator": "openai-images",
                "base_url": url,
                "model": "img-1",
                "size": "8x8",
                "api_key_env": key_env,
                "retry_backoff_s": 0.0,
            }
        ],
        "judges": [str(FAKE_JUDGE)],
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_an_audit_of_an_api_model_records_provenance_and_never_the_key(api, tmp_path: Path):
    from t2iaudit.spec import load_spec
    from t2iaudit.stages import run_audit

    server, url = api
    server.script[:] = [(429, {"Retry-After": "0"})]
    store = run_audit(load_spec(_spec(tmp_path, url, "TEST_IMAGES_KEY")), tmp_path / "run")
    images = store.images()
    assert len(images) == 4 and all(im.seed is None for im in images)
    assert sorted(im.params["attempts"] for im in images) == [1, 1, 1, 2]
    assert {im.params["model"] for im in images} == {"img-1"}
    manifest = store.path("manifest.json").read_text()
    assert '"revision": "api:img-1"' in manifest
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_a_missing_key_variable_is_refused_at_load_naming_the_field(api, tmp_path: Path):
    from t2iaudit.spec import load_spec

    _, url = api
    with pytest.raises(InputError) as err:
        load_spec(_spec(tmp_path, url, "T2IAUDIT_TEST_UNSET_KEY"))
    assert "T2IAUDIT_TEST_UNSET_KEY" in str(err.value) and "models[0].api_key_env" in str(err.value)
    assert not (tmp_path / "run").exists()
