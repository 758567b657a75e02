"""Word tokens with character offsets, and the a/an rule the rewriter may apply."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*|[^\w\s]", re.UNICODE)
_VOWEL_SOUND_EXCEPTIONS = ("uni", "use", "usu", "uti", "eu", "one", "once")
_SILENT_H = ("hour", "honest", "honor", "honour", "heir")


@dataclass(frozen=True)
class Token:
    """One word or punctuation mark of a prompt."""

    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower().replace("’", "'")

    @property
    def is_word(self) -> bool:
        return self.text[:1].isalnum()

    @property
    def is_capitalised(self) -> bool:
        return self.text[:1].isupper()

    @property
    def base(self) -> str:
        """The lower-cased word without a possessive ``'s``."""
        low = self.lower
        return low[:-2] if low.endswith("'s") else low

    @property
    def possessive(self) -> bool:
        return self.lower.endswith("'s")


def tokenize(text: str) -> list[Token]:
    """Words (letters and digits, with inner apostrophes and hyphens) and single punctuation marks."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def article_for(word: str) -> str:
    """``"an"`` before a vowel sound, else ``"a"`` (spelling heuristics, enough for the vocabulary)."""
    low = word.lower()
    if low.startswith(_SILENT_H):
        return "an"
    if low[:1] in "aeiou" and not low.startswith(_VOWEL_SOUND_EXCEPTIONS):
        return "an"
    return "a"


def match_case(new: str, old: str) -> str:
    """``new`` with the first letter's case of ``old`` (``A`` -> ``An``)."""
    return new[:1].upper() + new[1:] if old[:1].isupper() else new
