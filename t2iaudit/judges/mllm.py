"""Multimodal LLM judge (``kind: mllm``): closed questions about an image, answered by scoring.

Two backends share one YAML schema of questions with closed option lists:

- ``transformers``: a local image-text-to-text model. No free text is generated or parsed:
  each option's answer text is appended after the chat prompt and its log-likelihood summed
  over its tokens (one forward pass per question when every option is a single distinct token).
  The scores are the options' probabilities renormalised over the option list.
- ``openai``: any OpenAI-compatible chat-completions server (vLLM, Ollama, hosted), see
  ``t2iaudit.judges.mllm_api``.

The YAML schema (questions, options, abstention, API options) is ``t2iaudit.judges.mllm_config``.

How ``unknown`` arises (a decision recorded here and in the docs): ``unknown`` is always one of
the options, so the model can choose it; on top of that, the answer becomes ``unknown`` when
the top option probability is below ``min_prob`` or its margin over the runner-up below
``min_margin``. The stored score vector covers every option, ``unknown`` included.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

from t2iaudit.judges.base import JudgeContext, JudgeInput, JudgeKind
from t2iaudit.judges.common import (
    decide,
    hf_load_kwargs,
    hf_revision,
    load_processor,
    resolve_model,
    torch_dtype,
)
from t2iaudit.judges.mllm_config import DEFAULT_INSTRUCTION, MllmJudgeConfig, render_question
from t2iaudit.types import Judgement


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
        # transformers types .to as a functools.wraps of an unbound method (it asks for the model first)
        self.model = model.to(context.device).eval()  # type: ignore[arg-type]
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
                Judgement(
                    image_id=item.image_id,
                    judge_id=self.judge_id,
                    attribute=name,
                    label=decide(probs, q),
                    scores=probs,
                    raw=raw,
                )
            )
        return out


def build_mllm_judge(config: MllmJudgeConfig, context: JudgeContext) -> Any:
    """Factory registered as judge kind ``mllm``; picks the backend named in the YAML."""
    if config.backend == "openai":
        from t2iaudit.judges.mllm_api import build_api_judge

        return build_api_judge(config, context)
    return MllmJudge(config, HFOptionScorer(config, context))


KIND = JudgeKind(MllmJudgeConfig, build_mllm_judge)
"""The ``mllm`` judge kind (registered in ``t2iaudit.judges.registry``)."""
