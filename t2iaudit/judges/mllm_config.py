"""The ``kind: mllm`` judge definition: closed questions, option lists, abstention, API options.

Both backends (``t2iaudit.judges.mllm``: a local transformers model scoring options;
``t2iaudit.judges.mllm_api``: an OpenAI-compatible server) read this one YAML schema. ``unknown``
is always one of the options, so the model can choose it; the answer also becomes ``unknown``
below ``min_prob`` or ``min_margin``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from t2iaudit.judges.base import JudgeConfig
from t2iaudit.judges.common import PROMPT_SOURCE_PATTERN, Abstention, DType, prompt_field
from t2iaudit.types import UNKNOWN, Prompt

SUBJECT = "{subject}"
"""Placeholder in a question for the subject taken from the prompt (text or a slot)."""


class MllmQuestion(Abstention):
    """One attribute asked as a question with a closed option list."""

    question: str
    """The question; may contain ``{subject}`` (filled from the prompt, see ``subject``)."""
    options: list[str]
    """Declared labels plus ``unknown`` (required: the model must be able to abstain)."""
    answers: dict[str, str] = Field(default_factory=dict)
    """Option -> the answer text the model says or is scored on, when it differs from the
    option (``{"3+": "3 or more"}``). Defaults to the option itself."""
    subject: list[str] = Field(default_factory=lambda: ["text"])
    """Where ``{subject}`` comes from, first non-empty wins: ``text``, ``slot:<name>``,
    ``meta:<name>``, ``requested:<name>``."""

    @field_validator("subject", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("subject")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        import re

        bad = [s for s in v if not re.match(PROMPT_SOURCE_PATTERN, s)]
        if bad or not v:
            raise ValueError(f"subject sources must be text, slot:<n>, meta:<n>, requested:<n>: {bad}")
        return v

    @model_validator(mode="after")
    def _options(self) -> MllmQuestion:
        if UNKNOWN not in self.options:
            raise ValueError(f"options must include {UNKNOWN!r} so the model can abstain")
        if len(set(self.options)) != len(self.options) or len(self.options) < 3:
            raise ValueError("options must be distinct: at least two labels plus unknown")
        if any(not o.strip() for o in self.options):
            raise ValueError("options must be non-empty")
        if extra := set(self.answers) - set(self.options):
            raise ValueError(f"answers for options not listed: {sorted(extra)}")
        texts = [self.answer(o).strip().casefold() for o in self.options]
        if len(set(texts)) != len(texts):
            raise ValueError("answer texts must be distinct (case-insensitive)")
        return self

    def answer(self, option: str) -> str:
        return self.answers.get(option, option)

    def labels(self) -> list[str]:
        """Declared labels: the options without ``unknown``."""
        return [o for o in self.options if o != UNKNOWN]


class ApiOptions(BaseModel):
    """How to reach an OpenAI-compatible chat-completions server (``backend: openai``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    """Up to and including ``/v1``, e.g. ``http://127.0.0.1:8000/v1``."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (never the key itself)."""
    timeout_s: float = Field(60.0, gt=0)
    """Per-request timeout; a request past it counts as ``timeout``."""
    max_retries: int = Field(2, ge=0, le=10)
    """Extra attempts after a failed one: at most ``1 + max_retries`` requests per question."""
    retry_backoff_s: float = Field(0.5, ge=0)
    """Wait before retry k is ``retry_backoff_s * 2**k``."""
    max_tokens: int = Field(32, ge=1)
    concurrency: int = Field(4, ge=1, le=64)
    """Requests in flight at once."""
    response_format: Literal["none", "json_object", "json_schema"] = "none"
    """Ask the server to enforce JSON (``json_schema`` lists the allowed answers)."""
    image_format: Literal["png", "jpeg"] = "png"
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Merged into every request body, e.g. vLLM's ``structured_outputs``."""


class MllmJudgeConfig(JudgeConfig):
    """``kind: mllm`` judge definition."""

    kind: Literal["mllm"] = "mllm"
    backend: Literal["transformers", "openai"] = "transformers"
    model: str
    """transformers: hub id, local folder or ``tiny:llava``; openai: the served model name."""
    revision: str | None = None
    """transformers hub models: the commit to load (pin a 40-hex commit for audits)."""
    dtype: DType = "auto"
    trust_remote_code: bool = False
    batch_size: int = Field(8, ge=1)
    """transformers: sequences (image x question x option) per forward pass."""
    system_prompt: str | None = None
    instruction: str | None = None
    """Appended to every question; ``{options}`` becomes the comma-separated answer texts.
    Default: ``Answer with one of: {options}.`` (transformers) or a JSON request (openai)."""
    assistant_prefix: str = ""
    """transformers: text put after the generation prompt, before the scored answer."""
    answer_suffix: str = ""
    """transformers: appended to every scored answer, e.g. the end-of-turn token
    (``<|im_end|>``), so an answer that is a prefix of another ("1" and "10") still scores
    as a complete answer. Required when some answer is a prefix of another."""
    length_normalise: bool = False
    """transformers: score options by mean instead of summed token log-probability."""
    questions: dict[str, MllmQuestion]
    """Attribute -> question."""
    api: ApiOptions | None = None
    """Server settings; required for ``backend: openai``."""

    def runs_on(self) -> Literal["accelerator", "cpu", "api"]:
        return "api" if self.backend == "openai" else "accelerator"

    def check_kind(self) -> None:
        """Questions, backend and ``api`` fit together; answers are scored as whole answers."""
        if not self.questions:
            raise ValueError("declare at least one question")
        if (self.backend == "openai") != (self.api is not None):
            raise ValueError("'api' is required with backend openai and only allowed with it")
        if self.backend == "transformers" and not self.answer_suffix:
            for name, q in self.questions.items():
                answers = [q.answer(o) for o in q.options]
                clash = [(a, b) for a in answers for b in answers if a != b and b.startswith(a)]
                if clash:
                    raise ValueError(
                        f"questions.{name}: answer {clash[0][0]!r} is a prefix of {clash[0][1]!r}; "
                        "its likelihood would include the longer answer's: set answer_suffix "
                        "(the model's end-of-turn token) or change the answers"
                    )

    def declared_labels(self) -> dict[str, list[str]]:
        """Each question's options without ``unknown``."""
        return {name: q.labels() for name, q in self.questions.items()}


DEFAULT_INSTRUCTION = "Answer with one of: {options}."


def render_question(config: MllmJudgeConfig, q: MllmQuestion, prompt: Prompt, default: str) -> tuple[str, str | None]:
    """The full question text for one image and the subject filled in (None if unused)."""
    subject = None
    text = q.question
    if SUBJECT in text:
        subject = prompt_field(prompt, q.subject) or "the subject of the prompt"
        text = text.replace(SUBJECT, subject)
    instruction = config.instruction if config.instruction is not None else default
    options = ", ".join(q.answer(o) for o in q.options)
    return f"{text} {instruction.replace('{options}', options)}".strip(), subject
