"""The rule-based prompt analyser: lexicons, census name lists and a few patterns (docs/debias.md).

Order of the rules: input that does not look English is left alone; then fictional characters
and works of fiction, public figures, capitalised first + last names (US census lists) and
honorific + name mark named or fictional people, whose words are no subjects; historical
markers, early years, decades and centuries mark historical contexts. Subjects are person nouns
(longest match, singular or plural) that head their noun phrase: not possessive, not followed
by an object noun ("a nurse uniform"), and, for nouns that are also common words ("general",
"pilot"), followed by a word that ends the phrase. Stated attributes are vocabulary words among
the noun's modifiers (back to the nearest function word) and the attributes gendered or aged
nouns state themselves ("grandmother").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from t2iaudit.debias.analysis import Analysis, Subject, sort_codes
from t2iaudit.debias.lexicon import Lexicon
from t2iaudit.debias.tokens import Token, tokenize
from t2iaudit.debias.vocab import Vocabulary

_CENTURY = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)[\s-]+century\b", re.IGNORECASE)
_DECADE = re.compile(r"\b(1\d{2})0s\b")
_YEAR = re.compile(r"\b(?:in|of|from|year|circa|c\.)\s+(1\d{3})\b", re.IGNORECASE)
NON_LATIN_SHARE = 0.3
"""Share of letters outside the Latin script above which a prompt is not analysed."""


@dataclass
class _Match:
    start: int  # token index
    end: int  # token index past the match
    lemma: str
    plural: bool


class RuleAnalyser:
    """Analyses prompts with lexicons and patterns; deterministic and fast (no model)."""

    def __init__(self, lexicon: Lexicon, vocabulary: Vocabulary) -> None:
        self.lexicon = lexicon
        self.vocabulary = vocabulary
        self.name = "rules"
        self.version = f"rules@{lexicon.version}"
        self._not_name = (
            lexicon.function_words
            | lexicon.honorifics
            | {w for k in lexicon.nouns for w in k}
            | {w for k in vocabulary.stating for w in k}
        )

    # -- language ---------------------------------------------------------------------------
    def unsupported_language(self, prompt: str, tokens: list[Token]) -> str | None:
        """Why the prompt does not look English, or None."""
        letters = [c for c in prompt if c.isalpha()]
        other = [c for c in letters if not unicodedata.name(c, "").startswith("LATIN")]
        if letters and len(other) / len(letters) >= NON_LATIN_SHARE:
            return f"{len(other)} of {len(letters)} letters are not Latin script"
        parts = [p for t in tokens if t.is_word for p in re.split(r"'", t.lower) if p]
        foreign = sum(p in self.lexicon.foreign_function_words for p in parts)
        english = sum(p in self.lexicon.english_function_words or p in self.lexicon.function_words for p in parts)
        if foreign >= 2 and foreign > english:
            return f"{foreign} function words of other languages, {english} English ones"
        return None

    # -- contexts ---------------------------------------------------------------------------
    def _phrases(self, tokens: list[Token], protected: set[int], context: set[str], evidence: list[str]) -> None:
        lex = self.lexicon
        words = [t.base for t in tokens]
        i = 0
        while i < len(tokens):
            hit = None
            for size in range(min(lex.longest_phrase, len(tokens) - i), 0, -1):
                key = tuple(words[i : i + size])
                capitalised = tokens[i].is_capitalised
                if key in lex.fictional_markers or (key in lex.fictional_characters and (size > 1 or capitalised)):
                    hit = ("FICTIONAL_CONTEXT", "fictional")
                elif key in lex.public_figures and (size > 1 or capitalised):
                    hit = ("NAMED_PERSON", "public figure")
                elif key in lex.historical_markers:
                    hit = ("HISTORICAL_CONTEXT", "historical marker")
                if hit:
                    context.add(hit[0])
                    evidence.append(f"{hit[1]}: {' '.join(t.text for t in tokens[i : i + size])!r}")
                    if hit[0] != "HISTORICAL_CONTEXT":
                        protected.update(range(i, i + size))
                    i += size
                    break
            else:
                i += 1

    def _names(self, tokens: list[Token], protected: set[int], context: set[str], evidence: list[str]) -> None:
        words = [t for t in tokens if t.is_word]
        if len(words) >= 3 and sum(t.is_capitalised for t in words) / len(words) > 0.6:
            return  # Title Case Prompt: capitals say nothing about names
        lex = self.lexicon
        for i, tok in enumerate(tokens):
            if i in protected or not tok.is_word or not tok.is_capitalised:
                continue
            j = i + 1
            if j < len(tokens) and tokens[j].text == "." and tok.lower in lex.honorifics:
                j += 1
            if j >= len(tokens) or j in protected:
                continue
            nxt = tokens[j]
            if not (nxt.is_word and nxt.is_capitalised and nxt.base not in self._not_name):
                continue
            first = tok.lower in lex.first_names and tok.lower not in self._not_name
            if first or tok.lower in lex.honorifics:
                kind = "census first name" if first else "honorific"
                context.add("NAMED_PERSON")
                evidence.append(f"named person ({kind}): {tok.text + ' ' + nxt.text!r}")
                protected.update(range(i, j + 1))

    def _history(self, prompt: str, context: set[str], evidence: list[str]) -> None:
        before = self.lexicon.historical_before_year
        hits = [m.group() for m in _CENTURY.finditer(prompt) if int(m.group(1)) <= (before - 1) // 100]
        hits += [m.group() for m in _DECADE.finditer(prompt) if int(m.group(1)) * 10 < before]
        hits += [m.group() for m in _YEAR.finditer(prompt) if int(m.group(1)) < before]
        if hits:
            context.add("HISTORICAL_CONTEXT")
            evidence += [f"historical date: {h!r}" for h in hits]

    # -- subjects ---------------------------------------------------------------------------
    def _matches(self, tokens: list[Token], protected: set[int]) -> list[_Match]:
        lex = self.lexicon
        out: list[_Match] = []
        i = 0
        while i < len(tokens):
            found = None
            if i not in protected and tokens[i].is_word:
                for size in range(min(lex.longest_noun, len(tokens) - i), 0, -1):
                    if protected & set(range(i, i + size)):
                        continue
                    key = tuple(t.lower for t in tokens[i : i + size - 1]) + (tokens[i + size - 1].base,)
                    if key in lex.nouns:
                        found = _Match(i, i + size, *lex.nouns[key])
                        break
            if found:
                out.append(found)
                i = found.end
            else:
                i += 1
        return out

    def _is_head(self, tokens: list[Token], m: _Match) -> bool:
        lex = self.lexicon
        if tokens[m.end - 1].possessive:
            return False
        nxt = tokens[m.end] if m.end < len(tokens) else None
        if nxt is not None and nxt.is_word and nxt.lower in lex.object_heads:
            return False
        if m.lemma in lex.ambiguous and nxt is not None and nxt.is_word:
            low = nxt.lower
            return low in lex.function_words or low.endswith(("ing", "ed"))
        return True

    def _stated(self, tokens: list[Token], run: list[_Match], floor: int) -> dict[str, str]:
        lex = self.lexicon
        start = run[0].start
        while start - 1 >= floor and tokens[start - 1].is_word and tokens[start - 1].lower not in lex.function_words:
            start -= 1
        span = [t.lower for t in tokens[start : run[0].start]]
        stated: dict[str, str] = {}
        i = 0
        while i < len(span):
            size, pairs = self.vocabulary.match_at(span, i)
            for attr, cls in pairs:
                stated.setdefault(attr, cls)
            i += size or 1
        for m in run:
            for attr, cls in lex.implied.get(m.lemma, {}).items():
                stated.setdefault(attr, cls)
        return stated

    def _subjects(self, prompt: str, tokens: list[Token], protected: set[int]) -> list[Subject]:
        runs: list[list[_Match]] = []
        for m in self._matches(tokens, protected):
            if runs and runs[-1][-1].end == m.start:
                runs[-1].append(m)  # "woman doctor": the last noun is the head
            else:
                runs.append([m])
        subjects: list[Subject] = []
        floor = 0
        for run in runs:
            while len(run) > 1 and run[-1].lemma in self.lexicon.ambiguous and not self._is_head(tokens, run[-1]):
                run = run[:-1]  # "a chef cooks pasta": "cooks" is a verb here, "chef" the head
            head = run[-1]
            if self._is_head(tokens, head):
                start, end = tokens[head.start].start, tokens[head.end - 1].end
                if tokens[head.end - 1].possessive:
                    end -= 2
                stated = self._stated(tokens, run, floor)
                subjects.append(
                    Subject(noun=prompt[start:end], start=start, end=end, plural=head.plural, stated=stated)
                )
            floor = run[-1].end
        return subjects

    def analyse(self, prompt: str) -> Analysis:
        """Subjects, stated attributes and context reasons of ``prompt``."""
        tokens = tokenize(prompt)
        why = self.unsupported_language(prompt, tokens)
        if why:
            return Analysis(prompt=prompt, context=["UNSUPPORTED_LANGUAGE"], evidence=[why], analyser=self.name)
        protected: set[int] = set()
        context: set[str] = set()
        evidence: list[str] = []
        self._phrases(tokens, protected, context, evidence)
        self._names(tokens, protected, context, evidence)
        self._history(prompt, context, evidence)
        subjects = self._subjects(prompt, tokens, protected)
        return Analysis(
            prompt=prompt, subjects=subjects, context=sort_codes(context), evidence=evidence, analyser=self.name
        )
