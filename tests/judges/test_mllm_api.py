"""MLLM judge, OpenAI-compatible backend, against a real HTTP server on 127.0.0.1.

A small FastAPI app speaking the chat-completions protocol runs under uvicorn in a thread. Each
question's text names a behaviour (valid answer, malformed JSON, empty content, too slow, an
answer outside the options, HTTP 500, ...); every request is recorded so retries can be counted.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request  # module level: FastAPI resolves the string annotations here
from fastapi.responses import JSONResponse, PlainTextResponse
from PIL import Image

from t2iaudit.errors import InputError
from t2iaudit.judges.base import JudgeContext, JudgeInput
from t2iaudit.judges.loader import build_judge, load_judge_config
from t2iaudit.judges.mllm import MllmJudgeConfig
from t2iaudit.judges.mllm_api import ApiJudge, build_api_judge, parse_answer
from t2iaudit.types import UNKNOWN, Prompt

SLOW_S = 1.5
TIMEOUT_S = 0.3

REPLIES = {
    "valid": '{"answer": "female"}',
    "fenced": '```json\n{"answer": "Male"}\n```',
    "prose": 'Sure! {"answer": "female"} is my answer.',
    "answer_text": '{"answer": "3 or more"}',
    "says_unknown": '{"answer": "unknown"}',
    "malformed": '{"answer": female',
    "empty": "",
    "no_field": '{"label": "female"}',
    "out_of_options": '{"answer": "robot"}',
}


class FakeServer:
    """Chat-completions endpoint whose behaviour is chosen by a ``[mode:<name>]`` tag."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.outage = False  # mode "outage": HTTP 503 while True, a valid answer after
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            text = body["messages"][-1]["content"][1]["text"]
            mode = re.search(r"\[mode:(\w+)\]", text).group(1)  # type: ignore[union-attr]
            with self.lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
                seen = sum(1 for b in self.requests if f"[mode:{mode}]" in b["messages"][-1]["content"][1]["text"])
            if mode == "slow":
                await asyncio.sleep(SLOW_S)
            if mode == "outage" and self.outage:
                return PlainTextResponse("service unavailable", status_code=503)
            if mode == "http500" or (mode == "flaky" and seen == 1):
                return PlainTextResponse("internal error", status_code=500)
            if mode == "http400":
                return PlainTextResponse("bad request: unknown field", status_code=400)
            if mode == "no_choices":
                return JSONResponse({"object": "chat.completion", "choices": []})
            content = REPLIES.get(mode, REPLIES["valid"])
            message = {"role": "assistant", "content": content if mode != "null_content" else None}
            return JSONResponse(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                }
            )

        self.app = app

    def count(self, mode: str) -> int:
        return sum(1 for b in self.requests if f"[mode:{mode}]" in b["messages"][-1]["content"][1]["text"])


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeServer, str]]:
    import uvicorn

    fake = FakeServer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free port, held open so nothing else can take it
    port = sock.getsockname()[1]
    config = uvicorn.Config(fake.app, log_level="warning", timeout_graceful_shutdown=1, lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.02)
    yield fake, f"http://127.0.0.1:{port}/v1"
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


MODES = [
    "valid",
    "fenced",
    "prose",
    "says_unknown",
    "malformed",
    "empty",
    "no_field",
    "out_of_options",
    "slow",
    "http500",
    "http400",
    "flaky",
    "no_choices",
    "null_content",
]


def api_config(base_url: str, **api: Any) -> MllmJudgeConfig:
    questions = {
        mode: {
            "question": f"[mode:{mode}] What is the perceived gender presentation?",
            "options": ["female", "male", "unknown"],
        }
        for mode in MODES
    }
    questions["answer_text"] = {
        "question": "[mode:answer_text] How many people?",
        "options": ["0", "1", "2", "3+", "unknown"],
        "answers": {"3+": "3 or more"},
    }
    settings = {
        "base_url": base_url,
        "timeout_s": TIMEOUT_S,
        "max_retries": 2,
        "retry_backoff_s": 0.0,
        "concurrency": 8,
        **api,
    }
    return MllmJudgeConfig.model_validate(
        {
            "id": "fake-api",
            "kind": "mllm",
            "backend": "openai",
            "model": "fake-vlm",
            "api": settings,
            "questions": questions,
        }
    )


def make_items(n: int) -> list[JudgeInput]:
    prompt = Prompt(prompt_id="p", set_id="s", template_id="t", text="a photo of a nurse")
    return [JudgeInput(f"img{i}", Image.new("RGB", (24 + i, 16), (10 * i, 0, 0)), prompt) for i in range(n)]


@pytest.fixture(scope="module")
def results(server: tuple[FakeServer, str]) -> tuple[FakeServer, ApiJudge, dict[tuple[str, str], Any], float]:
    fake, url = server
    judge = build_api_judge(api_config(url), JudgeContext())
    t0 = time.perf_counter()
    out = judge.judge(make_items(2))
    elapsed = time.perf_counter() - t0
    judge.close()
    return fake, judge, {(j.image_id, j.attribute): j for j in out}, elapsed


def test_every_item_and_question_gets_one_judgement(results: tuple) -> None:
    _, judge, out, _ = results
    assert len(out) == 2 * len(judge.attributes)
    for (_, attr), j in out.items():
        q = judge.config.questions[attr]
        assert j.label in q.options
        assert list(j.scores) == q.options
        assert sum(j.scores.values()) in (0.0, 1.0)
        assert "latency_s" not in j.raw  # timings live outside the records


@pytest.mark.parametrize(
    ("mode", "label"),
    [("valid", "female"), ("fenced", "male"), ("prose", "female"), ("answer_text", "3+"), ("says_unknown", UNKNOWN)],
)
def test_valid_answers_are_parsed(results: tuple, mode: str, label: str) -> None:
    fake, _, out, _ = results
    for image in ("img0", "img1"):
        j = out[image, mode]
        assert j.label == label
        assert j.raw["error"] is None and j.raw["attempts"] == 1
        assert j.raw["text"] == REPLIES[mode]
        assert j.scores[label] == 1.0 and sum(j.scores.values()) == 1.0
    assert fake.count(mode) == 2  # no retries


@pytest.mark.parametrize(
    ("mode", "error", "requests_per_image"),
    [
        ("malformed", "not_json", 3),
        ("empty", "empty", 3),
        ("null_content", "empty", 3),
        ("no_field", "no_answer", 3),
        ("out_of_options", "out_of_options", 3),
        ("slow", "timeout", 3),
        ("http500", "http_500", 3),
        ("no_choices", "bad_response", 3),
        ("http400", "http_400", 1),  # a client error is not retried
    ],
)
def test_failures_become_unknown_with_raw_kept(results: tuple, mode: str, error: str, requests_per_image: int) -> None:
    fake, _, out, _ = results
    for image in ("img0", "img1"):
        j = out[image, mode]
        assert j.label == UNKNOWN
        assert j.raw["error"] == error
        assert j.raw["errors"] == [error] * requests_per_image
        assert j.raw["attempts"] == requests_per_image
        assert all(v == 0.0 for v in j.scores.values())
        if mode in REPLIES:
            assert j.raw["text"] == REPLIES[mode]
        if mode.startswith("http"):
            assert j.raw["text"].startswith(("internal error", "bad request"))
    assert fake.count(mode) == 2 * requests_per_image  # bounded: 1 + max_retries


def test_retry_recovers_after_a_transient_error(results: tuple) -> None:
    fake, _, out, _ = results
    j = out["img0", "flaky"], out["img1", "flaky"]
    # The first request of the run fails with 500; that question's retry succeeds.
    assert [x.label for x in j] == ["female", "female"]
    assert sorted(x.raw["attempts"] for x in j) == [1, 2]
    assert fake.count("flaky") == 3


def test_requests_follow_the_protocol(results: tuple) -> None:
    fake, _, _, elapsed = results
    body = fake.requests[0]
    assert body["model"] == "fake-vlm" and body["temperature"] == 0
    image_part, text_part = body["messages"][-1]["content"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.size in ((24, 16), (25, 16))
    assert 'JSON object {"answer": "<answer>"}' in text_part["text"]
    assert "female, male, unknown" in text_part["text"]
    assert "authorization" not in fake.headers[0]
    # Slow answers time out client-side: 3 attempts x 0.3 s, concurrently with the rest.
    assert elapsed < 3 * SLOW_S


def test_api_key_from_env_and_json_schema(server: tuple[FakeServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    fake, url = server
    monkeypatch.setenv("FAKE_VLM_KEY", "sekret")
    config = api_config(url, api_key_env="FAKE_VLM_KEY", response_format="json_schema", extra_body={"seed": 3})
    data = config.model_dump()
    data["questions"] = {"valid": data["questions"]["valid"]}
    judge = build_api_judge(MllmJudgeConfig.model_validate(data), JudgeContext())
    before = len(fake.requests)
    [j] = judge.judge(make_items(1))
    judge.close()
    assert j.label == "female"
    body, headers = fake.requests[before], fake.headers[before]
    assert headers["authorization"] == "Bearer sekret"
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["answer"]["enum"] == ["female", "male", "unknown"]
    assert body["seed"] == 3


def test_missing_api_key_is_a_clear_error(server: tuple[FakeServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(InputError, match="NO_SUCH_KEY_VAR"):
        build_api_judge(api_config(server[1], api_key_env="NO_SUCH_KEY_VAR"), JudgeContext())


def test_unreachable_server_is_unknown_not_a_crash() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    data = api_config(f"http://127.0.0.1:{port}/v1", max_retries=1).model_dump()
    data["questions"] = {"valid": data["questions"]["valid"]}
    judge = build_api_judge(MllmJudgeConfig.model_validate(data), JudgeContext())
    [j] = judge.judge(make_items(1))
    assert j.label == UNKNOWN and j.raw["error"] == "connection" and j.raw["attempts"] == 2


def test_shipped_example_yaml_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    judge = build_judge(load_judge_config("mllm-openai"), JudgeContext())
    assert isinstance(judge, ApiJudge)
    assert set(judge.attributes) == {"gender", "age", "skin_tone", "person_count", "shows_subject"}
    assert judge.revision.startswith("openai:http://127.0.0.1:8000/v1#")
    judge.close()


def test_parse_answer_is_strict_about_options() -> None:
    q = api_config("http://x").questions["answer_text"]
    assert parse_answer('{"answer": " 3+ "}', q) == ("3+", None)
    assert parse_answer('{"answer": "3 OR MORE"}', q) == ("3+", None)
    assert parse_answer('{"answer": 3}', q) == (None, "no_answer")
    assert parse_answer('["3+"]', q) == (None, "no_answer")
    assert parse_answer("three", q) == (None, "not_json")
    assert parse_answer("   ", q) == (None, "empty")
    counts = Counter(parse_answer(t, q)[1] for t in ('{"answer": "4"}', '{"answer": "unknown"}'))
    assert counts == Counter({"out_of_options": 1, None: 1})


def test_failure_counts_appear_in_the_metrics(results: tuple) -> None:
    """Unknowns from a misbehaving server are counted per failure kind (J2), not dropped."""
    from t2iaudit.metrics.compute import MetricsOptions, run_families
    from t2iaudit.metrics.table import JudgementTable, build_frame

    _, judge, out, _ = results
    judgements = [j.model_dump() for j in out.values()]
    images = [
        {"image_id": i, "model_id": "m", "prompt_id": "p", "replicate": n} for n, i in enumerate(["img0", "img1"])
    ]
    prompts = [{"prompt_id": "p", "set_id": "s", "template_id": "t", "expected_people": 1, "text": "a photo"}]
    table = JudgementTable(build_frame(judgements, images, prompts), {judge.judge_id: judge.attributes})
    values = run_families(table, MetricsOptions(families=["judge_validity"], bootstrap_resamples=0))
    failures = {(v.attribute, v.params["error"]): v for v in values if v.metric == "J2_failure_rate"}
    assert failures["malformed", "not_json"].value == 1.0 and failures["malformed", "not_json"].n == 2
    assert failures["slow", "timeout"].n_unknown == 2
    assert ("valid", None) not in failures and not any(a == "valid" for a, _ in failures)
    unknown = {v.attribute: v for v in values if v.metric == "J2_unknown_rate" and "prompt_id" not in v.scope}
    assert unknown["http500"].value == 1.0 and unknown["valid"].value == 0.0


def test_transient_failures_are_marked_and_deterministic_ones_are_not(results: tuple) -> None:
    _, _, out, _ = results
    for mode in ("slow", "http500"):  # timeout, HTTP 5xx after the retries
        assert out["img0", mode].raw["transient"] is True
    for mode in ("malformed", "out_of_options", "http400", "valid", "says_unknown"):
        assert "transient" not in out["img0", mode].raw


JUDGE_YAML = """\
id: {name}
kind: mllm
backend: openai
model: fake-vlm
api: {{base_url: "{url}", timeout_s: 2, max_retries: 1, retry_backoff_s: 0}}
questions:
  gender:
    question: "[mode:{mode}] What is the perceived gender presentation?"
    options: [female, male, unknown]
"""
RETRY_SPEC = """\
id: retry
replicates: 3
prompts: [{set: one.yaml}]
models:
  - {id: m, model: "tiny:sd15", steps: 2, width: 64, height: 64}
judges: [outage.yaml, broken.yaml]
"""
ONE_SET = """\
id: one
version: "1"
source: test fixture
templates:
  - {id: nurse, text: "a photo of a nurse"}
"""


def test_transient_failures_are_asked_again_on_the_next_run(server: tuple[FakeServer, str], tmp_path) -> None:
    """The found bug: a timeout or HTTP 5xx was stored as a final unknown and never retried."""
    from t2iaudit import stages
    from t2iaudit.metrics.table import load_table
    from t2iaudit.run.lifecycle import open_run
    from t2iaudit.spec import load_spec
    from t2iaudit.types import ImageRecord

    fake, url = server
    (tmp_path / "one.yaml").write_text(ONE_SET)
    (tmp_path / "outage.yaml").write_text(JUDGE_YAML.format(name="outage", url=url, mode="outage"))
    (tmp_path / "broken.yaml").write_text(JUDGE_YAML.format(name="broken", url=url, mode="malformed"))
    (tmp_path / "spec.yaml").write_text(RETRY_SPEC)
    spec = load_spec(tmp_path / "spec.yaml")
    store = open_run(spec, tmp_path / "run")
    prompts = stages.expand_prompts(spec)
    store.write_prompts(prompts)
    rel, sha = store.save_image(Image.new("RGB", (8, 8)))
    store.append_images(
        [
            ImageRecord(
                image_id=f"m/{prompts[0].prompt_id}/{r}",
                model_id="m",
                replicate=r,
                seed=r,
                prompt_id=prompts[0].prompt_id,
                path=rel,
                sha256=sha,
                width=8,
                height=8,
            )
            for r in range(3)
        ]
    )

    def asked() -> tuple[int, int]:
        return fake.count("outage"), fake.count("malformed")

    fake.outage = True
    try:
        start = asked()
        stages.judge_images(store, spec)
        first = asked()
        assert (first[0] - start[0], first[1] - start[1]) == (6, 6)  # 3 images x (1 + 1 retry) each
        frame = load_table(store.root).frame
        assert set(frame["label"]) == {UNKNOWN} and set(frame["error"]) == {"http_503", "not_json"}
    finally:
        fake.outage = False
    stages.judge_images(store, spec)  # the outage is over
    second = asked()
    assert (second[0] - first[0], second[1] - first[1]) == (3, 0)  # only the transient failures again
    frame = load_table(store.root).frame
    assert len(frame) == 6 and not frame.duplicated(["image_id", "judge_id", "attribute"]).any()
    outage = frame[frame["judge_id"].str.startswith("outage")]
    assert set(outage["label"]) == {"female"} and outage["error"].isna().all()  # superseded, counted once
    stages.judge_images(store, spec)
    assert asked() == second  # nothing left to ask
