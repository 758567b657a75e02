"""Multimodal LLM judge (``kind: mllm``): closed questions about an image, answered by scoring.

Two backends share one YAML schema of questions with closed option lists:

- ``transformers``: a local image-text-to-text model. No free text is generated or parsed:
  each option's answer text is appended after the chat prompt and its log-likelihood summed
  over its tokens (one forward pass per question when every option is a single distinct token).
  The scores are the options' probabilities renormalised over the option list.
- ``openai``: any OpenAI-compatible chat-completions server (vLLM, Ollama, hosted), see
  ``t2iaudit.judges.mllm_api``.

How ``unknown`` arises (a decision recorded here and in the docs): ``unknown`` is always one of
the options, so the model can choose it; on top of that, the answer becomes ``unknown`` when
the top option probability is below ``min_prob`` or its margin over the runner-up below
``min_margin``. The stored score vector covers every option, ``unknown`` included.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from t2iaudit.judges.base import JudgeConfig, JudgeContext, JudgeInput, JudgeKind
from t2iaudit.judges.common import (
    PROMPT_SOURCE_PATTERN,
    Abstention,
    DType,
    decide,
    hf_load_kwargs,
    hf_revision,
    load_processor,
    prompt_field,
    resolve_model,
    torch_dtype,
)
from t2iaudit.types import UNKNOWN, Judgement, Prompt

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


class ScoredSequence(NamedTuple):
    """One sequence of a forward pass: a request's prompt, maybe followed by one option."""

    request: int
    """Index of the (image, question) request."""
    option: int
    """Index of the appended option, or -1 when single-token options are all read at once."""
    enc: dict[str, Any]
    """Processor output for the prompt with its image (batch of one)."""
    extra: list[int]
    """Option token ids appended after the prompt."""
    reads: list[tuple[int, int]]
    """(position, token id): log P(token id | sequence up to position) to collect."""


class HFOptionScorer:
    """Scores answer options with a local transformers image-text-to-text model."""

    def __init__(self, config: MllmJudgeConfig, context: JudgeContext) -> None:
        from transformers import AutoModelForImageTextToText

        path = resolve_model(config.model, context)
        kwargs = hf_load_kwargs(config.revision, config.trust_remote_code, path)
        dtype = torch_dtype(config.dtype, context.device)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, **kwargs)
        self.model = model.to(context.device).eval()
        self.processor = load_processor(path, kwargs)
        self.tokenizer = self.processor.tokenizer
        self.device = context.device
        self.config = config
        self.revision = hf_revision(config.model, path, config.revision, self.model)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._prompts: dict[str, str] = {}
        # Option token ids, computed once per question (appended as ids so the prompt's last
        # tokens never merge with the answer's first ones).
        self.option_ids: dict[str, list[list[int]]] = {}
        for name, q in config.questions.items():
            answers = [q.answer(o) + config.answer_suffix for o in q.options]
            ids = [self.tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
            if any(not i for i in ids):
                raise ValueError(f"questions.{name}: an answer tokenizes to nothing")
            self.option_ids[name] = ids

    def chat_prompt(self, question: str) -> str:
        if question not in self._prompts:
            messages = []
            if self.config.system_prompt:
                messages.append({"role": "system", "content": [{"type": "text", "text": self.config.system_prompt}]})
            messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]})
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
            self._prompts[question] = text + self.config.assistant_prefix
        return self._prompts[question]

    def score(self, requests: list[tuple[Any, str, str]]) -> list[list[float]]:
        """Log-likelihood of every option for each ``(image, question text, attribute)``."""
        seqs: list[ScoredSequence] = []
        for r, (image, question, attr) in enumerate(requests):
            enc = self.processor(images=[image], text=[self.chat_prompt(question)], return_tensors="pt")
            n = enc["input_ids"].shape[1]
            ids = self.option_ids[attr]
            if all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == len(ids):
                # Single distinct tokens: one pass, read every option at the last position.
                seqs.append(ScoredSequence(r, -1, enc, [], [(n - 1, i[0]) for i in ids]))
            else:
                for k, opt in enumerate(ids):
                    seqs.append(ScoredSequence(r, k, enc, opt, [(n - 1 + j, t) for j, t in enumerate(opt)]))
        out = [[0.0] * len(self.option_ids[attr]) for _, _, attr in requests]
        size = self.config.batch_size
        for start in range(0, len(seqs), size):
            chunk = seqs[start : start + size]
            for seq, lps in zip(chunk, self._forward(chunk)):
                if seq.option >= 0:  # one option per sequence: its token log-probs summed
                    total = sum(lps)
                    out[seq.request][seq.option] = total / len(lps) if self.config.length_normalise else total
                else:
                    out[seq.request] = lps
        return out

    def _forward(self, chunk: list[ScoredSequence]) -> list[list[float]]:
        """One padded forward pass; the log-probs at each sequence's read positions."""
        import torch

        lengths = [s.enc["input_ids"].shape[1] + len(s.extra) for s in chunk]
        width = max(lengths)
        batch: dict[str, Any] = {}
        # Left padding keeps every sequence's end aligned, so only the last few positions'
        # logits are needed (logits_to_keep); RoPE attention depends on relative positions only.
        for key in chunk[0].enc.keys():
            parts = []
            for seq, length in zip(chunk, lengths):
                value, extra = seq.enc[key], seq.extra
                if key == "input_ids":
                    value = torch.cat([value, torch.tensor([extra], dtype=value.dtype)], 1)
                    value = torch.nn.functional.pad(value, (width - length, 0), value=self.pad_id)
                elif torch.is_tensor(value) and value.shape[:2] == seq.enc["input_ids"].shape:
                    # Per-token inputs (attention mask, token types) grow with the answer.
                    fill = 1 if key == "attention_mask" else 0
                    value = torch.cat([value, torch.full((1, len(extra)), fill, dtype=value.dtype)], 1)
                    value = torch.nn.functional.pad(value, (width - length, 0), value=0)
                parts.append(value)
            # Image inputs (pixel values, grid sizes) stack along the batch/patch dimension.
            batch[key] = torch.cat(parts) if torch.is_tensor(parts[0]) else parts[0]
        first = min(pos + (width - n) for seq, n in zip(chunk, lengths) for pos, _ in seq.reads)
        kwargs = {"logits_to_keep": width - first} if self._keeps_logits else {}
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        if torch.is_tensor(batch.get("pixel_values")) and batch["pixel_values"].is_floating_point():
            batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            logits = self.model(**batch, **kwargs).logits.float()
        offset = width - logits.shape[1]  # column 0 of logits is this sequence position
        out = []
        for row, (seq, n) in enumerate(zip(chunk, lengths)):
            cols = torch.tensor([pos + (width - n) - offset for pos, _ in seq.reads])
            toks = torch.tensor([t for _, t in seq.reads])
            lp = torch.log_softmax(logits[row, cols.to(logits.device)], -1)
            out.append(lp.gather(-1, toks.to(lp.device)[:, None])[:, 0].tolist())
        return out


class MllmJudge:
    """Batched MLLM judge on the transformers backend: one forward per chunk of sequences."""

    def __init__(self, config: MllmJudgeConfig, scorer: HFOptionScorer) -> None:
        self.config = config
        self.scorer = scorer
        self.judge_id = config.judge_id()
        self.revision = scorer.revision
        self.attributes = config.declared_labels()

    def judge(self, items: list[JudgeInput]) -> list[Judgement]:
        out: list[Judgement] = []
        per_chunk = max(1, self.config.batch_size // max(len(self.config.questions), 1))
        for start in range(0, len(items), per_chunk):
            out.extend(self._judge_chunk(items[start : start + per_chunk]))
        return out

    def _judge_chunk(self, chunk: list[JudgeInput]) -> list[Judgement]:
        import math

        requests, subjects = [], []
        for item in chunk:
            for name, q in self.config.questions.items():
                text, subject = render_question(self.config, q, item.prompt, DEFAULT_INSTRUCTION)
                requests.append((item.image, text, name))
                subjects.append(subject)
        logprobs = self.scorer.score(requests)
        out = []
        for (_, _, name), lps, subject, item in zip(
            requests, logprobs, subjects, [i for i in chunk for _ in self.config.questions]
        ):
            q = self.config.questions[name]
            z = max(lps)
            total = sum(math.exp(v - z) for v in lps)
            probs = {o: math.exp(v - z) / total for o, v in zip(q.options, lps)}
            raw: dict[str, Any] = {"logprob": dict(zip(q.options, lps))}
            if subject is not None:
                raw["subject"] = subject
            out.append(
                Judgement(image_id=item.image_id, judge_id=self.judge_id, attribute=name,
                          label=decide(probs, q), scores=probs, raw=raw)
            )  # fmt: skip
        return out


def build_mllm_judge(config: MllmJudgeConfig, context: JudgeContext) -> Any:
    """Factory registered as judge kind ``mllm``; picks the backend named in the YAML."""
    if config.backend == "openai":
        from t2iaudit.judges.mllm_api import build_api_judge

        return build_api_judge(config, context)
    return MllmJudge(config, HFOptionScorer(config, context))


KIND = JudgeKind(MllmJudgeConfig, build_mllm_judge)
"""The ``mllm`` judge kind (registered in ``t2iaudit.judges.registry``)."""
