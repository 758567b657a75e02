"""The structural rule of a rewrite: it may only insert planned attribute words next to a subject noun.

METRICS.md, "Debiasing quality" (text preservation): words are compared lower-cased; inserting
words of the planned phrases directly before or after an occurrence of a subject noun is
allowed, and so is switching the article ``a``/``an`` in front of such an insertion. Anything
else (a deleted or changed word, an insertion elsewhere, a word outside the plan) is a
violation.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ARTICLES = frozenset({"a", "an"})
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-cased ASCII word tokens, as the rule compares them."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class RewriteCheck:
    """Result of the structural rule check of one rewrite."""

    ok: bool
    inserted: list[str]
    violations: list[str]


def _edges(orig: list[str], subjects: Sequence[str]) -> tuple[set[int], list[str]]:
    edges: set[int] = set()
    missing = []
    for subject in subjects:
        subj = words(subject)
        spans = [
            (s, s + len(subj)) for s in range(len(orig) - len(subj) + 1) if subj and orig[s : s + len(subj)] == subj
        ]
        if not spans:
            missing.append(subject)
        edges |= {e for span in spans for e in span}
    return edges, missing


def check_insertions(original: str, rewritten: str, subjects: Sequence[str], planned: Iterable[str]) -> RewriteCheck:
    """Check that ``rewritten`` only inserts words of ``planned`` next to one of ``subjects``.

    Args:
        original: The user's prompt.
        rewritten: The rewrite to check.
        subjects: The subject nouns (one or more words each) that insertions may touch.
        planned: The planned attribute phrases (split into words).
    """
    allowed = {w for phrase in planned for w in words(phrase)}
    orig, rew = words(original), words(rewritten)
    edges, missing = _edges(orig, subjects)
    if missing:
        return RewriteCheck(False, [], [f"subject {s!r} not found in the original" for s in missing])
    inserted: list[str] = []
    violations: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, orig, rew, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        old, new, at = orig[i1:i2], rew[j1:j2], i1
        if op == "replace" and len(old) == 1 and old[0] in ARTICLES and new and new[0] in ARTICLES:
            old, new, at = [], new[1:], i1 + 1  # a/an agreement, then the insertion after it
        if old:
            violations.append(
                f"changed {' '.join(old)!r} to {' '.join(new)!r}" if new else f"deleted {' '.join(old)!r}"
            )
            continue
        if not new:
            continue
        bad = [w for w in new if w not in allowed]
        if bad:
            violations.append(f"inserted non-planned words {bad}")
        elif at not in edges:
            violations.append(f"inserted {' '.join(new)!r} away from the subject nouns")
        inserted += new
    return RewriteCheck(not violations, inserted, violations)


def check_rewrite(original: str, rewritten: str, subject: str, planned: Iterable[str]) -> RewriteCheck:
    """:func:`check_insertions` for one subject noun."""
    return check_insertions(original, rewritten, [subject], planned)


def mask_inserted(original: str, rewritten: str, planned: Iterable[str]) -> str:
    """The rewrite with the attribute words it inserted (absent from the original) removed."""
    allowed = {w for phrase in planned for w in words(phrase)}
    orig = words(original)
    rew = words(rewritten)
    keep: list[str] = []
    for op, _, _, j1, j2 in difflib.SequenceMatcher(None, orig, rew, autojunk=False).get_opcodes():
        seg = rew[j1:j2]
        keep += seg if op == "equal" else [w for w in seg if w not in allowed]
    return " ".join(keep)
