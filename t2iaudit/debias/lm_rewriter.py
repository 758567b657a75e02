"""The optional LM rewriter: its text must pass the checks, or the engine keeps the template rewrite instead."""

from __future__ import annotations

import json

from t2iaudit.debias.lm import LMError, TextLM
from t2iaudit.debias.rewriter import RewriteTask

SYSTEM = (
    "You edit prompts for a text-to-image model. Insert each given phrase directly before the given noun and "
    "change nothing else, except 'a'/'an' before an inserted phrase. Answer with JSON: {\"prompt\": \"...\"}."
)
SCHEMA = {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}


class LMRewriter:
    """Asks ``lm`` for the rewrite. Whatever comes back is checked by the engine (and may be replaced)."""

    def __init__(self, lm: TextLM) -> None:
        self.lm = lm
        self.name = f"lm:{lm.name}"

    def rewrite(self, task: RewriteTask) -> str:
        wanted = "; ".join(
            f"before {task.analysis.subjects[i].noun!r} insert {' '.join(p)!r}" for i, p in task.phrases.items() if p
        )
        try:
            raw = self.lm.complete(SYSTEM, f"Prompt: {task.prompt}\nEdits: {wanted}", SCHEMA)
        except LMError as e:
            return f"<no rewrite: {e}>"
        try:
            text = json.loads(raw)["prompt"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return raw
        return text if isinstance(text, str) else raw
