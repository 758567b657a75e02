"""``kind: mllm`` with ``backend: openai``: questions sent to an OpenAI-compatible server.

Works with any chat-completions server that takes images as base64 data URLs (vLLM, Ollama,
hosted APIs), over plain httpx. The model is asked for JSON ``{"answer": "<option>"}``; the
answer is validated against the question's option list. Whatever goes wrong (timeout, HTTP
error, empty or non-JSON content, an answer outside the options) is retried a bounded number
of times, then becomes the label ``unknown`` with the raw text and the failure kind in ``raw``
(``transient: true`` besides for timeouts, connection errors and retryable HTTP statuses, which
the next run of the judge stage asks again, see ``transient_error``):

    raw = {"text": <last content or error body>, "error": "timeout" | "http_<code>" |
           "connection" | "bad_response" | "empty" | "not_json" | "no_answer" |
           "out_of_options" | None, "attempts": n, "errors": [one kind per failed attempt]}

(Timings are not part of a judgement: the judge stage records them in ``timings.jsonl``.)

Scores are an indicator vector over the options (1.0 for the answer given; all 0.0 when no
valid answer came back): chat completions give no option probabilities without logprobs.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from t2iaudit.errors import InputError
from t2iaudit.judges.base import JudgeContext, JudgeInput
from t2iaudit.judges.mllm_config import MllmJudgeConfig, MllmQuestion, render_question
from t2iaudit.types import TRANSIENT, UNKNOWN, Judgement

API_INSTRUCTION = 'Reply with only a JSON object {"answer": "<answer>"} where <answer> is one of: {options}.'
"""Default instruction for the API backend (``{options}`` is filled in)."""

RETRY_HTTP = {408, 409, 425, 429, 500, 502, 503, 504}
"""HTTP statuses worth retrying; other 4xx mean the request itself is wrong."""


def transient_error(kind: str | None) -> bool:
    """Failures that say nothing about the image: a timeout, a connection error, a retryable HTTP
    status (5xx, 429, ...). Still failing after the retries, they are stored with
    ``raw["transient"] = True`` and asked again on the next run of the judge stage; answers the
    model gave (not JSON, outside the options) and other HTTP 4xx are final."""
    if kind in ("timeout", "connection"):
        return True
    return bool(kind and kind.startswith("http_") and kind[5:].isdigit() and int(kind[5:]) in RETRY_HTTP)


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)
_OBJECT = re.compile(r"\{.*?\}", re.S)


def image_data_url(image: Any, fmt: str = "png") -> str:
    """A PIL image as a ``data:image/<fmt>;base64,...`` URL."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG" if fmt == "jpeg" else "PNG")
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def parse_answer(text: str, q: MllmQuestion) -> tuple[str | None, str | None]:
    """(option, None) for a valid answer, else (None, failure kind)."""
    text = (text or "").strip()
    if not text:
        return None, "empty"
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    data: Any = None
    # A whole-JSON reply first; failing that, the first {...} in prose ("Sure: {...}").
    for candidate in [text, *_OBJECT.findall(text)]:
        try:
            data = json.loads(candidate)
            break
        except ValueError:
            continue
    else:
        return None, "not_json"
    if not isinstance(data, dict) or not isinstance(data.get("answer"), str):
        return None, "no_answer"
    said = data["answer"].strip().casefold()
    for option in q.options:
        if said in (option.casefold(), q.answer(option).strip().casefold()):
            return option, None
    return None, "out_of_options"


class ApiJudge:
    """Asks every question about every image over HTTP, ``concurrency`` requests at a time."""

    def __init__(self, config: MllmJudgeConfig, client: Any) -> None:
        assert config.api is not None
        self.config = config
        self.api = config.api
        self.client = client
        self.judge_id = config.judge_id()
        self.revision = f"openai:{self.api.base_url}#{config.model}"
        self.attributes = config.declared_labels()

    def close(self) -> None:
        self.client.close()

    def judge(self, items: list[JudgeInput]) -> list[Judgement]:
        urls = [image_data_url(item.image, self.api.image_format) for item in items]
        jobs = [(i, name) for i in range(len(items)) for name in self.config.questions]

        def run(job: tuple[int, str]) -> Judgement:
            i, name = job
            return self._ask(items[i], urls[i], name)

        with ThreadPoolExecutor(max_workers=self.api.concurrency) as pool:
            return list(pool.map(run, jobs))

    def _body(self, url: str, question: str, q: MllmQuestion) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if self.config.system_prompt:
            messages.append({"role": "system", "content": self.config.system_prompt})
        content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": question}]
        messages.append({"role": "user", "content": content})
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.api.max_tokens,
        }
        if self.api.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        elif self.api.response_format == "json_schema":
            answers = [q.answer(o) for o in q.options]
            schema = {
                "type": "object",
                "properties": {"answer": {"type": "string", "enum": answers}},
                "required": ["answer"],
            }
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        body.update(self.api.extra_body)
        return body

    def _ask(self, item: JudgeInput, url: str, name: str) -> Judgement:
        q = self.config.questions[name]
        question, subject = render_question(self.config, q, item.prompt, API_INSTRUCTION)
        body = self._body(url, question, q)
        errors: list[str] = []
        text, option = "", None
        for attempt in range(1 + self.api.max_retries):
            if attempt:
                time.sleep(self.api.retry_backoff_s * 2 ** (attempt - 1))
            text, option, error, retry = self._attempt(body, q)
            if error is None:
                break
            errors.append(error)
            if not retry:
                break
        raw: dict[str, Any] = {
            "text": text,
            "error": errors[-1] if option is None else None,
            "attempts": len(errors) + (option is not None),
            "errors": errors,
        }
        if option is None and transient_error(raw["error"]):
            raw[TRANSIENT] = True
        if subject is not None:
            raw["subject"] = subject
        label = option or UNKNOWN
        scores = {o: float(o == option) for o in q.options}
        return Judgement(
            image_id=item.image_id, judge_id=self.judge_id, attribute=name, label=label, scores=scores, raw=raw
        )

    def _attempt(self, body: dict[str, Any], q: MllmQuestion) -> tuple[str, str | None, str | None, bool]:
        """One request: (text, option, failure kind, worth retrying)."""
        import httpx

        try:
            r = self.client.post("/chat/completions", json=body)
        except httpx.TimeoutException:
            return "", None, "timeout", True
        except httpx.HTTPError as e:
            return str(e), None, "connection", True
        if r.status_code != 200:
            return r.text[:2000], None, f"http_{r.status_code}", r.status_code in RETRY_HTTP
        try:
            message = r.json()["choices"][0]["message"]
            content = message.get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return r.text[:2000], None, "bad_response", True
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        text = content if isinstance(content, str) else ""
        option, error = parse_answer(text, q)
        return text, option, error, True


def build_api_judge(config: MllmJudgeConfig, context: JudgeContext, client: Any = None) -> ApiJudge:
    """An ``ApiJudge`` with one pooled httpx client (pass ``client`` to inject a transport)."""
    import httpx

    api = config.api
    assert api is not None
    headers = {}
    if api.api_key_env:
        key = os.environ.get(api.api_key_env)
        if not key:
            raise InputError(
                f"environment variable {api.api_key_env} (the API key) is not set", field="api.api_key_env"
            )
        headers["Authorization"] = f"Bearer {key}"
    if client is None:
        limits = httpx.Limits(max_connections=api.concurrency, max_keepalive_connections=api.concurrency)
        client = httpx.Client(
            base_url=api.base_url.rstrip("/"), headers=headers, timeout=httpx.Timeout(api.timeout_s), limits=limits
        )
    return ApiJudge(config, client)
