"""The analyser's lexicons (``lexicon.yaml``), the shipped prompt sets' occupations and census name lists."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2iaudit.errors import InputError

LEXICON_FILE = Path(__file__).with_name("lexicon.yaml")
NAME_FILES = ("dist.male.first", "dist.female.first", "dist.all.last")
"""US census (1990) name lists shipped inside the ``names`` package (MIT, Trey Hunner)."""


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(text.lower().replace("’", "'").split())


def plural(noun: str, irregular: dict[str, str]) -> str:
    """English plural of a (compound) noun: irregular forms first, then spelling rules."""
    low = noun.lower()
    if low in irregular:
        return irregular[low]
    head, _, last = low.rpartition(" ")
    if last in irregular:
        out = irregular[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        out = last + "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u"):
        out = last[:-1] + "ies"
    else:
        out = last + "s"
    return f"{head} {out}" if head else out


@dataclass(frozen=True)
class Lexicon:
    """Everything the rule-based analyser looks words up in (all lower case)."""

    version: str
    """The file's version plus a hash of the lexicon, the occupations and the name lists."""
    nouns: dict[tuple[str, ...], tuple[str, bool]]
    """Person noun form (word sequence) -> (its singular lemma, whether the form is plural)."""
    implied: dict[str, dict[str, str]]
    """Lemma -> attributes the noun states by itself (``girl`` -> female, young)."""
    ambiguous: frozenset[str]
    object_heads: frozenset[str]
    function_words: frozenset[str]
    honorifics: frozenset[str]
    public_figures: frozenset[tuple[str, ...]]
    historical_markers: frozenset[tuple[str, ...]]
    historical_before_year: int
    fictional_characters: frozenset[tuple[str, ...]]
    fictional_markers: frozenset[tuple[str, ...]]
    foreign_function_words: frozenset[str]
    english_function_words: frozenset[str]
    first_names: frozenset[str]
    last_names: frozenset[str]

    @functools.cached_property
    def longest_noun(self) -> int:
        return max(len(k) for k in self.nouns)

    @functools.cached_property
    def longest_phrase(self) -> int:
        phrases = (*self.public_figures, *self.historical_markers, *self.fictional_characters, *self.fictional_markers)
        return max(len(k) for k in phrases)


def shipped_occupations() -> list[str]:
    """Occupation and role nouns of the shipped prompt sets (occupations, explicit, relations)."""
    from t2iaudit.resources import builtin_dir
    from t2iaudit.yamlfile import read_yaml

    out: list[str] = []
    folder = builtin_dir("prompts")
    for name in ("occupations", "explicit"):
        path = folder / f"{name}.yaml"
        if path.is_file():
            for slot in (read_yaml(path).get("slots") or {}).get("occupation", []):
                out.append(slot["text"] if isinstance(slot, dict) else str(slot))
    path = folder / "relations.yaml"
    if path.is_file():
        for template in read_yaml(path).get("templates", []):
            meta = template.get("meta") or {}
            out += [str(meta[k]) for k in ("left", "right") if meta.get(k)]
    # "human Boxer", "human Veterinarian": the prompt set says "human" to rule out the dog breed.
    return [o[6:] if o.lower().startswith("human ") else o for o in out]


def _names(files: Iterable[str]) -> tuple[frozenset[str], frozenset[str], str]:
    import importlib.resources

    try:
        root = importlib.resources.files("names")
    except ModuleNotFoundError:
        raise InputError("the 'names' package (US census name lists) is not installed: pip install names") from None
    first: set[str] = set()
    last: set[str] = set()
    digest = hashlib.sha256()
    for name in files:
        data = (root / name).read_bytes()
        digest.update(data)
        target = last if name.endswith("last") else first
        target.update(line.split()[0].lower() for line in data.decode("ascii").splitlines() if line.strip())
    return frozenset(first), frozenset(last), digest.hexdigest()[:12]


def build_lexicon(raw: dict[str, Any], extra_nouns: Iterable[str], source: str | Path = LEXICON_FILE) -> Lexicon:
    """A :class:`Lexicon` from the YAML mapping ``raw`` plus ``extra_nouns`` (occupations)."""
    try:
        irregular = {str(k).lower(): str(v).lower() for k, v in (raw.get("irregular_plurals") or {}).items()}
        nouns: dict[tuple[str, ...], tuple[str, bool]] = {}
        for noun in [*raw["person_nouns"], *extra_nouns]:
            lemma = " ".join(_phrase(noun))
            nouns.setdefault(_phrase(lemma), (lemma, False))
            nouns.setdefault(_phrase(plural(lemma, irregular)), (lemma, True))
        words = {
            key: frozenset(str(w).lower() for w in raw.get(key) or [])
            for key in (
                "ambiguous_nouns",
                "object_heads",
                "function_words",
                "honorifics",
                "foreign_function_words",
                "english_function_words",
            )
        }
        phrases = {
            key: frozenset(_phrase(str(w)) for w in raw.get(key) or [])
            for key in ("public_figures", "historical_markers", "fictional_characters", "fictional_markers")
        }
        implied = {
            str(k).lower(): {str(a): str(c) for a, c in v.items()} for k, v in (raw.get("implied") or {}).items()
        }
        before = int(raw.get("historical_before_year", 1950))
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise InputError(f"malformed lexicon ({type(e).__name__}: {e})", file=source) from None
    first, last, names_digest = _names(NAME_FILES)
    # Frozensets are sorted first: their repr follows string hashing, which changes between processes.
    fixed_words = sorted((k, sorted(v)) for k, v in words.items())
    fixed_phrases = sorted((k, sorted(v)) for k, v in phrases.items())
    digest = hashlib.sha256(
        repr((sorted(nouns), sorted(implied.items()), fixed_words, fixed_phrases, before)).encode()
    ).hexdigest()[:12]
    return Lexicon(
        version=f"{raw.get('version', '0')}+{digest}+names:{names_digest}",
        nouns=nouns,
        implied=implied,
        ambiguous=words["ambiguous_nouns"],
        object_heads=words["object_heads"],
        function_words=words["function_words"],
        honorifics=words["honorifics"],
        public_figures=phrases["public_figures"],
        historical_markers=phrases["historical_markers"],
        historical_before_year=before,
        fictional_characters=phrases["fictional_characters"],
        fictional_markers=phrases["fictional_markers"],
        foreign_function_words=words["foreign_function_words"],
        english_function_words=words["english_function_words"],
        first_names=first,
        last_names=last,
    )


@functools.lru_cache(maxsize=4)
def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """The shipped lexicon (or the one in ``path``) with the shipped occupations added."""
    from t2iaudit.yamlfile import read_yaml

    source = Path(path) if path else LEXICON_FILE
    raw = read_yaml(source, "debias lexicon")
    if not isinstance(raw, dict):
        raise InputError("expected a mapping", file=source)
    return build_lexicon(raw, shipped_occupations(), source)
