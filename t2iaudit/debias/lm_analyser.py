"""The optional LM prompt analyser: constrained JSON, validated, and the rules' analysis when it does not validate."""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from t2iaudit.debias.analysis import Analysis, Subject, sort_codes
from t2iaudit.debias.lm import LMError, TextLM
from t2iaudit.debias.rules import RuleAnalyser

ContextCode = Literal["NAMED_PERSON", "HISTORICAL_CONTEXT", "FICTIONAL_CONTEXT", "UNSUPPORTED_LANGUAGE"]


class LMSubject(BaseModel):
    """One subject as the LM reports it."""

    model_config = ConfigDict(extra="forbid")
    noun: str = Field(min_length=1, max_length=80)
    """The subject noun exactly as written in the prompt."""
    stated: dict[str, str] = Field(default_factory=dict)
    """Attributes the prompt states for it."""


class LMAnswer(BaseModel):
    """The JSON an LM analyser must return."""

    model_config = ConfigDict(extra="forbid")
    subjects: list[LMSubject] = Field(max_length=8)
    context: list[ContextCode] = Field(default_factory=list)


SYSTEM = (
    "You analyse prompts for a text-to-image model. List the human subject nouns in order of appearance, "
    "exactly as written (compound nouns whole, e.g. 'police officer'; no names of real or fictional people), "
    "and for each the attributes the prompt states about it, using only these attributes and classes: {classes}. "
    "Add context codes: NAMED_PERSON for named or public people, HISTORICAL_CONTEXT for historical settings, "
    "FICTIONAL_CONTEXT for fictional characters or works, UNSUPPORTED_LANGUAGE for prompts not in English. "
    "Answer with JSON only."
)


class LMAnalyser:
    """Asks ``lm`` for an :class:`LMAnswer`; any failure to validate gives the rules' analysis with the reason."""

    def __init__(self, lm: TextLM, rules: RuleAnalyser) -> None:
        self.lm = lm
        self.rules = rules
        self.name = f"lm:{lm.name}"
        self.version = f"{self.name}|{rules.version}"

    def analyse(self, prompt: str) -> Analysis:
        try:
            return self._ask(prompt)
        except (LMError, ValueError) as e:
            fallback = self.rules.analyse(prompt)
            reason = str(e).splitlines()[0][:300]
            return fallback.model_copy(update={"fallback": f"{self.name}: {reason}; rules used"})

    def _ask(self, prompt: str) -> Analysis:
        vocab = self.rules.vocabulary
        classes = "; ".join(f"{a}: {', '.join(c)}" for a, c in vocab.classes.items())
        raw = self.lm.complete(SYSTEM.format(classes=classes), f"Prompt: {prompt}", LMAnswer.model_json_schema())
        try:
            answer = LMAnswer.model_validate(json.loads(raw))
        except (json.JSONDecodeError, ValidationError) as e:
            raise ValueError(f"answer does not validate ({type(e).__name__})") from None
        subjects = []
        at = 0
        for s in answer.subjects:
            m = re.compile(rf"(?<!\w){re.escape(s.noun)}(?!\w)", re.IGNORECASE).search(prompt, at)
            if m is None:
                raise ValueError(f"subject {s.noun!r} is not in the prompt (in order)")
            for attr, cls in s.stated.items():
                if cls not in vocab.classes.get(attr, []):
                    raise ValueError(f"stated {attr}={cls!r} is not in the vocabulary")
            subjects.append(Subject(noun=m.group(), start=m.start(), end=m.end(), stated=dict(s.stated)))
            at = m.end()
        return Analysis(prompt=prompt, subjects=subjects, context=sort_codes(answer.context), analyser=self.name)
