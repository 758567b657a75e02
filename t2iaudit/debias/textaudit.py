"""The rewriter's own bias: attribute words a rewriter adds that the plan did not ask for, per class.

LM-based prompt rewriters bring attributes of their own (FairPro, "system-prompt bias" in
LLM-based generators): a rewriter asked for "female" may also add "young" or "her", and more
often for some classes than others. This audits the text stage before any image is made: for
each rewriter and each task, every vocabulary word or pronoun the rewrite adds (counted against
the original) whose class was not planned is an unplanned addition of that class. Words are
counted wherever they stand, so "a white coat" added to a prompt counts as race White: the
count is of attribute *words*, reported with a Wilson interval per rewriter and class.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from pydantic import Field

from t2iaudit.debias.checks import phrase_states
from t2iaudit.debias.rewriter import Rewriter, RewriteTask
from t2iaudit.debias.tokens import tokenize
from t2iaudit.debias.vocab import Vocabulary
from t2iaudit.types import Record


class RewriterBias(Record):
    """How often one rewriter added an unplanned word of one class."""

    rewriter: str
    attribute: str
    label: str
    """The class whose words were added."""
    n: int
    """Rewrites audited."""
    added: int
    """Rewrites that added a word of this class that was not planned."""
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    examples: list[str] = Field(default_factory=list)
    """Up to three rewrites that did it."""


def class_mentions(vocab: Vocabulary, text: str) -> Counter[tuple[str, str]]:
    """Occurrences of each (attribute, class) among the words of ``text`` (stating words and pronouns)."""
    low = [t.lower for t in tokenize(text) if t.is_word]
    out: Counter[tuple[str, str]] = Counter()
    i = 0
    while i < len(low):
        size, pairs = vocab.match_at(low, i)
        out.update(pairs)
        i += size or 1
    for attr, by_class in vocab.pronouns.items():
        for cls, words in by_class.items():
            out[(attr, cls)] += sum(w in words for w in low)
    return out


def unplanned_additions(vocab: Vocabulary, task: RewriteTask, rewritten: str) -> set[tuple[str, str]]:
    """The (attribute, class) pairs ``rewritten`` mentions more often than the original, minus the planned ones."""
    before, after = class_mentions(vocab, task.prompt), class_mentions(vocab, rewritten)
    planned = {pair for p in task.planned_phrases for pair in phrase_states(vocab, p).items()}
    return {pair for pair, count in after.items() if count > before.get(pair, 0) and pair not in planned}


def audit_rewriters(
    rewriters: Sequence[Rewriter] | Mapping[str, Rewriter],
    tasks: Sequence[RewriteTask],
    vocab: Vocabulary,
    confidence: float = 0.95,
) -> list[RewriterBias]:
    """One record per rewriter and vocabulary class (zeros included), from rewriting every task."""
    from t2iaudit.metrics.stats import wilson_interval

    named = dict(rewriters) if isinstance(rewriters, Mapping) else {r.name: r for r in rewriters}
    out: list[RewriterBias] = []
    for name, rewriter in named.items():
        hits: Counter[tuple[str, str]] = Counter()
        examples: dict[tuple[str, str], list[str]] = {}
        for task in tasks:
            text = rewriter.rewrite(task)
            for pair in unplanned_additions(vocab, task, text):
                hits[pair] += 1
                examples.setdefault(pair, [])
                if len(examples[pair]) < 3:
                    examples[pair].append(text)
        n = len(tasks)
        for attr, classes in vocab.classes.items():
            for cls in classes:
                k = hits[(attr, cls)]
                ci = wilson_interval(k, n, confidence) if n else None
                out.append(
                    RewriterBias(
                        rewriter=name,
                        attribute=attr,
                        label=cls,
                        n=n,
                        added=k,
                        rate=k / n if n else None,
                        ci_low=float(ci[0]) if ci is not None else None,
                        ci_high=float(ci[1]) if ci is not None else None,
                        examples=examples.get((attr, cls), []),
                    )
                )
    return out
