"""Captioner (``kind: caption``): a transformers image-to-text model, greedy decoding.

Captions feed TBYB's hallucination metrics (Vice et al. 2024: Jaccard hallucination, added and
missing objects, distribution bias), which compare the caption's content words with the
prompt's. BLIP-style captioners (``BlipForConditionalGeneration``) take the image and an
optional text prefix; chat VLMs get the image and an instruction through their chat template.
The caption is stored in ``raw``; the label is ``text``, or ``unknown`` for an empty caption.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from t2iaudit.judges.base import JudgeConfig, JudgeContext, JudgeInput, JudgeKind
from t2iaudit.judges.common import DType, hf_load_kwargs, hf_revision, load_processor, resolve_model, torch_dtype
from t2iaudit.types import UNKNOWN, Judgement

CAPTION = "caption"
"""The attribute a captioner labels (free text: no declared labels)."""


class CaptionJudgeConfig(JudgeConfig):
    """``kind: caption`` judge definition."""

    kind: Literal["caption"] = "caption"
    model: str
    """Hub id, local folder or ``tiny:blip``."""
    revision: str | None = None
    """Hub models: the commit to load (pin a 40-hex commit for audits)."""
    dtype: DType = "auto"
    trust_remote_code: bool = False
    batch_size: int = Field(16, ge=1)
    """Images per ``generate`` call."""
    max_new_tokens: int = Field(30, ge=1, le=512)
    mode: Literal["auto", "direct", "chat"] = "auto"
    """``direct``: processor(images, text=prompt) as BLIP does; ``chat``: the chat template with
    the image and ``prompt`` as the instruction. ``auto``: chat when the processor has a template."""
    prompt: str | None = None
    """direct: optional caption prefix (BLIP's ``"a photography of"``); chat: the instruction
    (default ``Describe this image in one sentence.``)."""

    def declared_labels(self) -> dict[str, list[str]]:
        """One free-text attribute, ``caption`` (no declared labels)."""
        return {CAPTION: []}


CHAT_DEFAULT = "Describe this image in one sentence."


class CaptionJudge:
    """Greedy captions for a batch of images, one ``generate`` call per batch."""

    def __init__(self, config: CaptionJudgeConfig, context: JudgeContext) -> None:
        from transformers import AutoModelForImageTextToText

        path = resolve_model(config.model, context)
        kwargs = hf_load_kwargs(config.revision, config.trust_remote_code, path)
        self.dtype = torch_dtype(config.dtype, context.device)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=self.dtype, **kwargs)
        # transformers types .to as a functools.wraps of an unbound method (it asks for the model first)
        self.model = model.to(context.device).eval()  # type: ignore[arg-type]
        self.processor = load_processor(path, kwargs)
        self.device = context.device
        self.config = config
        self.judge_id = config.judge_id()
        self.revision = hf_revision(config.model, path, config.revision, self.model)
        self.attributes: dict[str, list[str]] = config.declared_labels()
        has_template = bool(getattr(self.processor, "chat_template", None))
        self.chat = config.mode == "chat" or (config.mode == "auto" and has_template)
        if self.chat:
            self.processor.tokenizer.padding_side = "left"  # decoder-only: pad before the prompt

    def _inputs(self, images: list[Any]) -> tuple[Any, int]:
        """Processor outputs for a batch, and how many leading output tokens are the prompt."""
        if self.chat:
            text = self.config.prompt or CHAT_DEFAULT
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
            prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
            enc = self.processor(images=images, text=[prompt] * len(images), padding=True, return_tensors="pt")
            # Decoder-only models return prompt + continuation: cut the prompt off.
            skip = 0 if self.model.config.is_encoder_decoder else enc["input_ids"].shape[1]
            return enc, skip
        if self.config.prompt:
            enc = self.processor(images=images, text=[self.config.prompt] * len(images), return_tensors="pt")
        else:
            enc = self.processor(images=images, return_tensors="pt")
        return enc, 0

    def judge(self, items: list[JudgeInput]) -> list[Judgement]:
        import torch

        out: list[Judgement] = []
        size = self.config.batch_size
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            enc, skip = self._inputs([item.image for item in batch])
            enc = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in enc.items()}
            if "pixel_values" in enc:
                enc["pixel_values"] = enc["pixel_values"].to(self.dtype)
            with torch.inference_mode():
                ids = self.model.generate(
                    **enc, do_sample=False, num_beams=1, max_new_tokens=self.config.max_new_tokens
                )
            texts = self.processor.batch_decode(ids[:, skip:], skip_special_tokens=True)
            for item, text in zip(batch, texts):
                text = " ".join(text.split())
                out.append(
                    Judgement(
                        image_id=item.image_id,
                        judge_id=self.judge_id,
                        attribute=CAPTION,
                        label="text" if text else UNKNOWN,
                        scores={},
                        raw=text,
                    )
                )
        return out


def build_caption_judge(config: CaptionJudgeConfig, context: JudgeContext) -> CaptionJudge:
    """Factory registered as judge kind ``caption``: loads the model once per stage."""
    return CaptionJudge(config, context)


KIND = JudgeKind(CaptionJudgeConfig, build_caption_judge)
"""The ``caption`` judge kind (registered in ``t2iaudit.judges.registry``)."""
