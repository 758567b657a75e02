"""Word folding for the TBYB hallucination metrics (H1, H3): content words, plurals, synonyms.

Word folding for H1/H3 (``content_words``): lower-case, split on non-letters, drop stop
words and one-letter tokens, reduce plurals to the singular, fold ``man``, ``woman``,
``child``, ``girl``, ``boy`` (and ``people``) to ``person``, then replace a caption word that
is a synonym of a prompt word by that prompt word, as TBYB does with WordNet.

Two lexicons provide the plurals and synonyms. When NLTK's WordNet corpus is installed (e.g.
``python -m nltk.downloader wordnet`` on a machine with internet access), ``lexicon="auto"``
uses it (``wordnet.synsets(word, pos="n")`` and ``wordnet.morphy``), which folds any noun.
Otherwise it falls back to ``t2iaudit/data/wordfold.json``, a small list written by hand for
t2iaudit (the project's own, CC0/MIT): ~700 common caption and prompt nouns (people,
occupations, animals, vehicles, food, household objects, clothing, scenes), ~140 groups of
everyday synonyms among them (car/automobile/auto, sofa/couch, tv/television, ...) and the
common irregular noun plurals. It is far smaller than WordNet: words outside its synonym
groups are not folded, and plurals outside its irregular list are reduced by suffix rules.

Deviations from the TBYB code (the lexicon used is recorded in ``params.lexicon``): (1) only noun synsets are used
(TBYB uses every part of speech, so e.g. "fix" folds into "doctor"); (2) the person fold is
applied to prompt and caption alike (TBYB folds only the caption, so a prompt "man" never
matches); (3) framing words (photo, picture, image, ...) are stop words everywhere (TBYB drops
the first four words "A picture of a" of its general prompts); (4) H3 counts caption words
after synonym folding but *before* the person fold, so "man" and "woman" stay distinct
objects in the distribution (as in TBYB's counting).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

DATA = Path(__file__).resolve().parents[2] / "data" / "wordfold.json"

PERSON_WORDS = frozenset({"man", "woman", "child", "girl", "boy", "people"})
"""Folded to ``person`` (METRICS.md H1; ``people`` added: WordNet's ``morphy`` leaves it as is)."""

STOP_WORDS = frozenset(
    """a an the this that these those there here it its it's they them their theirs he him his
    she her hers we us our you your i me my myself themselves himself herself itself each other
    another some any many much more most few several all both no none not very too also just
    one two three four five six seven eight nine ten first second single pair couple of
    of in on at to into onto from by with without for about above below over under between
    behind beside near next front back through around across along against among inside
    outside up down off out while during before after as like than then so and or but if
    is are was were be been being am has have had having do does did can could will would
    shall should may might must let looks look looking appear appears seems who whom whose
    which what where when why how else other such own same only good bad front background
    left right side top bottom middle photo photograph picture image pic shot portrait
    rendering render illustration view closeup close-up realistic photorealistic
    high quality detailed hd 4k 8k""".split()
)
"""Our stop words: function words and numbers (as TBYB's list), plus framing words."""

_EXTRA_PLURALS = {
    "women": "woman",
    "buses": "bus",
    "series": "series",
    "species": "species",
    "potatoes": "potato",
    "tomatoes": "tomato",
    "heroes": "hero",
    "mangoes": "mango",
    "volcanoes": "volcano",
    "echoes": "echo",
    "mosquitoes": "mosquito",
    "dominoes": "domino",
    "torpedoes": "torpedo",
    "businessmen": "businessman",
    "businesswomen": "businesswoman",
    "policemen": "policeman",
    "policewomen": "policewoman",
    "firemen": "fireman",
    "fishermen": "fisherman",
    "salesmen": "salesman",
    "chairmen": "chairman",
    "gentlemen": "gentleman",
    "craftsmen": "craftsman",
    "sportsmen": "sportsman",
}
"""Ours: regular-looking plurals the suffix rules get wrong, and common ``-men`` compounds."""

_TOKEN = re.compile(r"[a-z]+")
_KEEP_S = ("ss", "us", "is")


class Lexicon(Protocol):
    """What folding needs from WordNet: a noun lemma and the noun synonyms of a word."""

    @property
    def name(self) -> str:
        """Recorded in ``params.lexicon``."""
        ...

    def lemma(self, word: str) -> str: ...

    def synonyms(self, word: str) -> frozenset[str]: ...


def _rule_singular(word: str, known: set[str] | frozenset[str]) -> str:
    """English plural -> singular by suffix rules; ``known`` words are left alone."""
    if word in known or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-1] if word[:-1] in known else word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(_KEEP_S):
        return word[:-1]
    return word


@dataclass(frozen=True)
class ShippedLexicon:
    """The hand-written fallback list shipped in ``t2iaudit/data/wordfold.json``.

    ``synonyms`` maps a head word to its synonyms; each group is made symmetric on load
    (every member lists the others; a word in two groups gets both). ``vocabulary`` and the
    singulars of ``irregular_plurals`` are known singular nouns the suffix rules leave alone.
    """

    synonym_table: dict[str, frozenset[str]]
    irregular: dict[str, str]
    known: frozenset[str] = field(default_factory=frozenset)
    name: str = "shipped-handlist"

    @classmethod
    def load(cls, path: Path = DATA) -> ShippedLexicon:
        data = json.loads(path.read_text(encoding="utf-8"))
        groups: dict[str, set[str]] = {}
        for head, others in data["synonyms"].items():
            group = {head, *others}
            for word in group:
                groups.setdefault(word, set()).update(group - {word})
        syn = {w: frozenset(v) for w, v in groups.items()}
        irregular = {**data["irregular_plurals"], **_EXTRA_PLURALS}
        known = frozenset(syn) | frozenset(data.get("vocabulary", ())) | frozenset(irregular.values())
        return cls(syn, irregular, known)

    def lemma(self, word: str) -> str:
        return self.irregular.get(word) or _rule_singular(word, self.known)

    def synonyms(self, word: str) -> frozenset[str]:
        return self.synonym_table.get(word, frozenset())


class NltkLexicon:
    """NLTK's WordNet corpus (used only when the corpus is installed)."""

    name = "nltk-wordnet"

    def __init__(self) -> None:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()  # raises LookupError when the corpus is absent
        self._wn = wordnet

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one lexicon per process
    def lemma(self, word: str) -> str:
        return self._wn.morphy(word, self._wn.NOUN) or word

    @functools.lru_cache(maxsize=65536)  # noqa: B019
    def synonyms(self, word: str) -> frozenset[str]:
        names = {n.lower() for s in self._wn.synsets(word, pos=self._wn.NOUN) for n in s.lemma_names()}
        return frozenset(n for n in names if "_" not in n) - {word}


@functools.lru_cache(maxsize=4)
def get_lexicon(kind: Literal["auto", "wordnet", "shipped"] = "auto") -> Lexicon:
    """``auto``: NLTK's WordNet when its corpus is installed, else the shipped hand-written list."""
    if kind in ("auto", "wordnet"):
        try:
            return NltkLexicon()
        except (LookupError, ImportError, OSError):
            if kind == "wordnet":
                raise
    return ShippedLexicon.load()


def content_words(text: str, lexicon: Lexicon, *, person_fold: bool = True) -> list[str]:
    """Content words of ``text`` in order, lemmatised, stop words removed (duplicates kept)."""
    out = []
    for tok in _TOKEN.findall(str(text).lower()):
        if len(tok) <= 1 or tok in STOP_WORDS:
            continue
        word = lexicon.lemma(tok)
        if word in STOP_WORDS:
            continue
        out.append("person" if person_fold and word in PERSON_WORDS else word)
    return out


def fold_synonyms(prompt_words: Iterable[str], caption_words: Iterable[str], lexicon: Lexicon) -> list[str]:
    """Replace each caption word that is a synonym of a prompt word by that prompt word (TBYB).

    Synonymy (sharing a noun synset, or a group of the shipped list) is symmetric, so both
    directions are looked up: a lexicon that lists a pair under one word only still folds it.
    """
    inputs = list(dict.fromkeys(prompt_words))
    out = []
    for word in caption_words:
        if word not in inputs:
            syn = lexicon.synonyms(word)
            word = next((s for s in inputs if s in syn or word in lexicon.synonyms(s)), word)
        out.append(word)
    return out


class CaptionFolder:
    """:func:`content_words` (without the person fold) and :func:`fold_synonyms` for many
    captions: each distinct token is lemmatised once, and each distinct (prompt words, caption
    word) pair folded once. Exact: the memos hold what the functions return for those inputs."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._tokens: dict[str, str | None] = {}
        self._folds: dict[tuple[tuple[str, ...], str], str] = {}

    def words(self, text: str) -> list[str]:
        """``content_words(text, lexicon, person_fold=False)``."""
        out = []
        for tok in _TOKEN.findall(str(text).lower()):
            if tok not in self._tokens:
                word = None if len(tok) <= 1 or tok in STOP_WORDS else self.lexicon.lemma(tok)
                self._tokens[tok] = None if word is None or word in STOP_WORDS else word
            found = self._tokens[tok]
            if found is not None:
                out.append(found)
        return out

    def fold(self, prompt_words: Iterable[str], caption_words: Iterable[str]) -> list[str]:
        """``fold_synonyms(prompt_words, caption_words, lexicon)``."""
        inputs = tuple(dict.fromkeys(prompt_words))
        out = []
        for word in caption_words:
            key = (inputs, word)
            if key not in self._folds:
                self._folds[key] = fold_synonyms(inputs, [word], self.lexicon)[0]
            out.append(self._folds[key])
        return out
