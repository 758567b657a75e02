"""Language-model backends for the optional LM analyser and rewriter: an OpenAI-compatible server, or a local causal LM."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from t2iaudit.errors import InputError


class LMError(RuntimeError):
    """The model could not be asked, or answered in a form that is not text."""


class TextLM(Protocol):
    """Anything that answers a system + user message with text (JSON when a schema is given)."""

    name: str

    def complete(self, system: str, user: str, schema: dict[str, Any] | None = None) -> str: ...


class OpenAIChatLM:
    """``POST {base_url}/chat/completions`` at temperature 0; ``response_format`` carries the JSON schema.

    Args:
        base_url: Server root including ``/v1`` (vLLM, Ollama, hosted APIs).
        model: Model name the server knows.
        api_key_env: Environment variable holding a bearer key, if the server needs one.
        client: An ``httpx.Client`` to use (tests pass one with a mock transport).
        timeout_s: Per-request timeout.
        max_tokens: Most tokens to generate.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        client: Any = None,
        timeout_s: float = 30.0,
        max_tokens: int = 256,
    ) -> None:
        import httpx

        headers = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise InputError(f"environment variable {api_key_env} (the LM server's key) is not set")
            headers["Authorization"] = f"Bearer {key}"
        self.client = client or httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)
        self.model = model
        self.max_tokens = max_tokens
        self.name = f"openai:{model}"

    def complete(self, system: str, user: str, schema: dict[str, Any] | None = None) -> str:
        import httpx

        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        if schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        try:
            r = self.client.post("/chat/completions", json=body)
        except httpx.HTTPError as e:
            raise LMError(f"request failed: {type(e).__name__}") from None
        if r.status_code != 200:
            raise LMError(f"HTTP {r.status_code}")
        try:
            content = r.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LMError(f"unexpected response shape ({type(e).__name__})") from None
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise LMError("no text content")
        return content


class TransformersLM:
    """A local causal LM (``AutoModelForCausalLM`` from a folder), greedy decoding, loaded on first use.

    Local LMs get no constrained decoding here: their answer is validated like any other and the
    rules take over when it does not validate.
    """

    def __init__(self, model_dir: str | Path, *, max_new_tokens: int = 128, device: str = "cpu") -> None:
        self.model_dir = Path(model_dir)
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.name = f"transformers:{self.model_dir.name}"
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not self.model_dir.is_dir():
            raise InputError("local LM folder not found", file=self.model_dir)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(self.model_dir, local_files_only=True)
        # transformers types .to as a functools.wraps of an unbound method (it asks for the model first)
        self._model = model.to(self.device)  # type: ignore[arg-type]
        self._model.eval()

    def complete(self, system: str, user: str, schema: dict[str, Any] | None = None) -> str:
        import torch

        if self._model is None:
            self._load()
        tok = self._tokenizer
        if getattr(tok, "chat_template", None):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            text = f"{system}\n\n{user}\n"
        inputs = tok(text, return_tensors="pt").to(self.device)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.no_grad():
            out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad)
        return tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
