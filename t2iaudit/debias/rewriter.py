"""Rewriters: the template rewriter inserts the planned phrases before each subject noun."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from t2iaudit.debias.analysis import Analysis
from t2iaudit.debias.tokens import article_for, match_case, tokenize


@dataclass(frozen=True)
class RewriteTask:
    """What a rewriter is asked to do for one item."""

    prompt: str
    """The original prompt."""
    analysis: Analysis
    """Its analysis (subjects with their offsets)."""
    phrases: dict[int, list[str]] = field(default_factory=dict)
    """Subject index -> the phrases to insert before it, in the vocabulary's order."""

    @property
    def planned_phrases(self) -> list[str]:
        return [p for ps in self.phrases.values() for p in ps]


class Rewriter(Protocol):
    """Anything that turns a task into a rewritten prompt."""

    name: str

    def rewrite(self, task: RewriteTask) -> str: ...


class TemplateRewriter:
    """Inserts ``"<phrase> <phrase> "`` before each subject noun; fixes a/an in front of it.

    The article directly before an insertion is the only word that may change ("an engineer"
    -> "a female engineer"), so the result always passes the structural rule.
    """

    name = "template"

    def rewrite(self, task: RewriteTask) -> str:
        text = task.prompt
        subjects = task.analysis.subjects
        for index in sorted(task.phrases, key=lambda i: subjects[i].start, reverse=True):
            phrases = task.phrases[index]
            if not phrases:
                continue
            at = subjects[index].start
            insert = " ".join(phrases) + " "
            text = text[:at] + insert + text[at:]
            before = [t for t in tokenize(text[:at]) if t.is_word or t.text.strip()]
            if before and before[-1].lower in ("a", "an") and not text[before[-1].end : at].strip():
                art = before[-1]
                new = match_case(article_for(phrases[0]), art.text)
                text = text[: art.start] + new + text[art.end :]
        return text
