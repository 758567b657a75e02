"""Generator backend for closed models behind any OpenAI-compatible images endpoint.

``POST {base_url}/images/generations`` with ``{"model", "prompt", "n": 1, "size", ...}``, one
request per image, answered with ``{"data": [{"b64_json": ...}]}`` (or a ``url``): OpenAI's
images API and the many servers that copy it. The key comes from an environment variable named
in the spec (never the key itself). Requests run ``concurrency`` at a time, at most
``requests_per_minute`` per process; timeouts, connection errors, 429 and 5xx are retried with
exponential backoff (429/503 wait what ``Retry-After`` says, capped), other 4xx and malformed
answers are not. Each image keeps its provenance (``revised_prompt``, ``created``, the
server's request id, the attempts it took).

Images from such an API are not seeded unless the server takes a ``seed`` (``send_seed``), and
the model behind a name can change without notice: the flows never skip a scheduled run of
an API model as "unchanged" (docs/flows.md).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.errors import InputError
from t2iaudit.generators.base import GeneratedImage, GenerationRequest, GeneratorKind

RETRY_HTTP = {408, 409, 425, 429, 500, 502, 503, 504}
"""Statuses worth retrying; any other 4xx means the request itself is wrong."""
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


class OpenAIImagesConfig(BaseModel):
    """Options of a ``generator: openai-images`` model entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(pattern=r"^https?://")
    """Up to and including ``/v1``, e.g. ``https://api.openai.com/v1``."""
    model: str
    """The model name the server knows, e.g. ``gpt-image-1``."""
    size: str = Field("1024x1024", pattern=r"^(\d+x\d+|auto)$")
    api_key_env: str | None = Field("OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Environment variable holding the key (sent as a bearer token); None: no key (local servers)."""
    response_format: Literal["b64_json", "url", "omit"] = "b64_json"
    """Asked of the server; ``omit`` leaves it out (models that always answer ``b64_json``)."""
    send_seed: bool = False
    """Send each image's derived seed as ``seed`` (servers that take one): images become
    reproducible and are recorded with their seed."""
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Merged into every request, e.g. ``{quality: high}``; these change the pixels and are recorded."""
    batch_size: int = Field(4, ge=1)
    """Images per ``generate`` call (a shard is cut into batches of this size)."""
    concurrency: int = Field(4, ge=1, le=64)
    """Requests in flight at once."""
    requests_per_minute: float | None = Field(None, gt=0)
    """Rate limit per process and (base URL, model); None: none."""
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    """Extra attempts after a failed one (transient failures only)."""
    retry_backoff_s: float = Field(2.0, ge=0)
    """Wait before retry k is ``retry_backoff_s * 2**k`` (unless the server says ``Retry-After``)."""
    max_retry_wait_s: float = Field(120.0, ge=0)
    """Cap on any single wait, ``Retry-After`` included."""


class ImageApiError(RuntimeError):
    """An image request that failed for good; ``transient`` when retrying later may help."""

    def __init__(self, message: str, kind: str, transient: bool, attempts: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.transient = transient
        self.attempts = attempts


class RateLimiter:
    """At most ``per_minute`` request starts per minute, shared by the threads of a process."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


_LIMITERS: dict[tuple[str, str], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def _limiter(config: OpenAIImagesConfig) -> RateLimiter | None:
    if config.requests_per_minute is None:
        return None
    with _LIMITERS_LOCK:
        key = (config.base_url, config.model)
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(config.requests_per_minute)
        return _LIMITERS[key]


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _api_message(response: Any) -> str:
    """The server's own error message (OpenAI's ``{"error": {"message"}}``), shortened."""
    try:
        body = response.json()
        text = body.get("error", {}).get("message") if isinstance(body, dict) else None
    except ValueError:
        text = None
    return str(text or response.text or "")[:300]


class OpenAIImagesGenerator:
    """Asks the endpoint for one image per request, ``concurrency`` requests at a time."""

    def __init__(self, config: OpenAIImagesConfig, model_id: str) -> None:
        import httpx

        self.config = config
        self.model_id = model_id
        self.batch_size = config.batch_size
        self.seeded = config.send_seed
        headers = {}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise InputError(f"environment variable {config.api_key_env} is not set", field="api_key_env")
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(base_url=config.base_url.rstrip("/"), headers=headers, timeout=config.timeout_s)
        self.limiter = _limiter(config)
        self.params: dict[str, Any] = {
            "api": config.base_url,
            "model": config.model,
            "size": config.size,
            **({"extra_body": config.extra_body} if config.extra_body else {}),
        }

    def generate(self, requests: list[GenerationRequest]) -> list[GeneratedImage]:
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(requests) or 1)) as pool:
            return list(pool.map(self._one, requests))

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        c = self.config
        body: dict[str, Any] = {"model": c.model, "prompt": request.prompt.text, "n": 1, "size": c.size}
        if c.response_format != "omit":
            body["response_format"] = c.response_format
        if c.send_seed:
            body["seed"] = request.seed
        return {**body, **c.extra_body}

    def _one(self, request: GenerationRequest) -> GeneratedImage:
        import httpx

        c = self.config
        where = f"model {self.model_id!r}, prompt {request.prompt.prompt_id!r}"
        kinds: list[str] = []
        for attempt in range(1 + c.max_retries):
            if self.limiter is not None:
                self.limiter.wait()
            wait = c.retry_backoff_s * 2**attempt
            try:
                response = self.client.post("/images/generations", json=self._body(request))
            except httpx.TimeoutException:
                kinds.append("timeout")
            except httpx.TransportError:
                kinds.append("connection")
            else:
                if response.status_code == 200:
                    return self._image(response, request, where, attempt + 1)
                kind = f"http_{response.status_code}"
                if response.status_code not in RETRY_HTTP:
                    message = f"{where}: the images API refused the request ({kind}: {_api_message(response)})"
                    raise ImageApiError(message, kind, transient=False, attempts=attempt + 1)
                kinds.append(kind)
                said = retry_after(response.headers.get("retry-after"))
                wait = said if said is not None else wait
            if attempt < c.max_retries:
                time.sleep(min(wait, c.max_retry_wait_s))
        message = f"{where}: the images API failed {len(kinds)} times ({', '.join(kinds)})"
        raise ImageApiError(message, kinds[-1], transient=True, attempts=len(kinds))

    def _image(self, response: Any, request: GenerationRequest, where: str, attempts: int) -> GeneratedImage:
        from PIL import Image

        def bad(why: str) -> ImageApiError:
            return ImageApiError(f"{where}: malformed images API answer ({why})", "bad_response", False, attempts)

        try:
            body = response.json()
            item = body["data"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise bad("no data[0]") from None
        if not isinstance(item, dict):
            raise bad("data[0] is not an object")
        if item.get("b64_json"):
            try:
                data = base64.b64decode(item["b64_json"], validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise bad("b64_json is not base64") from None
        elif item.get("url"):
            import httpx

            # A plain GET without the API key: the URL may point at another host.
            fetched = httpx.get(str(item["url"]), timeout=self.config.timeout_s)
            if fetched.status_code != 200:
                raise bad(f"image URL answered http_{fetched.status_code}")
            data = fetched.content
        else:
            raise bad("neither b64_json nor url")
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                fmt = im.format or "PNG"
        except OSError:
            raise bad("not an image") from None
        provenance = {
            "revised_prompt": item.get("revised_prompt"),
            "created": body.get("created") if isinstance(body, dict) else None,
            "request_id": response.headers.get("x-request-id"),
            "attempts": attempts,
        }
        return GeneratedImage(
            data=data, suffix=SUFFIX.get(fmt, ".png"), params={k: v for k, v in provenance.items() if v is not None}
        )

    def describe(self) -> dict[str, Any]:
        # An API model has no revision to resolve: the name is all the server tells.
        return {
            "model": self.config.model,
            "revision": f"api:{self.config.model}",
            "device": "api",
            "api": self.config.base_url,
        }

    def close(self) -> None:
        self.client.close()


def check_openai_images(config: OpenAIImagesConfig, model_cache: Path | None = None) -> None:
    """At spec load: the key's environment variable is set (its value is never read here)."""
    if config.api_key_env and not os.environ.get(config.api_key_env):
        raise InputError(f"environment variable {config.api_key_env} is not set", field="api_key_env")


def build_openai_images(config: OpenAIImagesConfig, model_id: str, model_cache: Path | None) -> OpenAIImagesGenerator:
    return OpenAIImagesGenerator(config, model_id)


KIND = GeneratorKind(OpenAIImagesConfig, build_openai_images, check=check_openai_images, runs_on="api")
"""The ``openai-images`` backend (registered in ``t2iaudit.generators.registry``)."""
