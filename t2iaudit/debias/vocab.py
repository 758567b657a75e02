"""The attribute vocabulary (``vocabulary.yaml``): classes, the phrase inserted per class, and stating words."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from t2iaudit.errors import InputError, pydantic_field_path

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yaml")
FORBIDDEN_WORDS = frozenset({"diverse", "diversity", "various", "mixed", "multiracial", "multicultural", "random"})
"""Words no phrase may contain: a phrase names one class of perceived appearance, nothing vaguer."""


class _ClassEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    phrase: str = Field(min_length=1)
    words: list[str] = Field(default_factory=list)


class _AttributeEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = ""
    classes: dict[str, _ClassEntry] = Field(min_length=1)
    pronouns: dict[str, list[str]] = Field(default_factory=dict)


class _VocabularyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    order: list[str] = Field(default_factory=list)
    attributes: dict[str, _AttributeEntry] = Field(min_length=1)


def _key(text: str) -> tuple[str, ...]:
    return tuple(text.lower().split())


@dataclass(frozen=True)
class Vocabulary:
    """Attribute -> class -> phrase, and the word sequences that state each class."""

    version: str
    """The file's version plus a hash of its content, e.g. ``1+3f2a9c0d1e2b``."""
    classes: dict[str, list[str]]
    """Declared classes per attribute, in file order."""
    phrases: dict[str, dict[str, str]]
    """The phrase the rewriter inserts for each attribute and class."""
    order: list[str]
    """Attribute order of the inserted phrases."""
    pronouns: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """Words that mark a class anywhere in a text (the text-stage audit counts them)."""
    stating: dict[tuple[str, ...], list[tuple[str, str]]] = field(default_factory=dict)
    """Word sequence (lower case) -> the (attribute, class) pairs it states."""

    @property
    def longest(self) -> int:
        return max((len(k) for k in self.stating), default=1)

    def phrase(self, attribute: str, cls: str) -> str:
        return self.phrases[attribute][cls]

    def ordered(self, assignment: dict[str, str]) -> list[str]:
        """The phrases for ``{attribute: class}``, in the vocabulary's order (unspecified left out)."""
        rank = {a: i for i, a in enumerate(self.order)}
        keys = sorted((a for a in assignment if cls_known(self, a, assignment[a])), key=lambda a: rank.get(a, 99))
        return [self.phrases[a][assignment[a]] for a in keys]

    def match_at(self, words: Sequence[str], i: int) -> tuple[int, list[tuple[str, str]]]:
        """The longest stating word sequence starting at ``words[i]``: (its length, its pairs)."""
        for size in range(min(self.longest, len(words) - i), 0, -1):
            hit = self.stating.get(tuple(words[i : i + size]))
            if hit:
                return size, hit
        return 0, []


def cls_known(vocab: Vocabulary, attribute: str, cls: str) -> bool:
    return cls in vocab.phrases.get(attribute, {})


def _build(data: _VocabularyFile, digest: str) -> Vocabulary:
    stating: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for attr, entry in data.attributes.items():
        for cls, spec in entry.classes.items():
            for text in {spec.phrase, *spec.words}:
                pairs = stating.setdefault(_key(text), [])
                if (attr, cls) not in pairs:
                    pairs.append((attr, cls))
    order = [a for a in data.order if a in data.attributes] + [a for a in data.attributes if a not in data.order]
    return Vocabulary(
        version=f"{data.version}+{digest}",
        classes={a: list(e.classes) for a, e in data.attributes.items()},
        phrases={a: {c: s.phrase for c, s in e.classes.items()} for a, e in data.attributes.items()},
        order=order,
        pronouns={a: dict(e.pronouns) for a, e in data.attributes.items() if e.pronouns},
        stating=stating,
    )


def parse_vocabulary(raw: Any, source: str | Path = "vocabulary") -> Vocabulary:
    """Validate a vocabulary mapping (as read from YAML); InputError names the field at fault."""
    try:
        data = _VocabularyFile.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        raise InputError(err["msg"], file=source, field=pydantic_field_path(err["loc"])) from None
    for attr, entry in data.attributes.items():
        for cls, spec in entry.classes.items():
            bad = FORBIDDEN_WORDS & {w.lower() for w in spec.phrase.split()}
            if bad or cls.lower() in FORBIDDEN_WORDS:
                raise InputError(
                    f"a phrase must name one class, not {sorted(bad) or cls!r}",
                    file=source,
                    field=f"attributes.{attr}.classes.{cls}.phrase",
                )
            if cls == "unspecified":
                raise InputError("'unspecified' is reserved", file=source, field=f"attributes.{attr}.classes")
    digest = hashlib.sha256(json.dumps(data.model_dump(), sort_keys=True).encode()).hexdigest()[:12]
    return _build(data, digest)


@functools.lru_cache(maxsize=8)
def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """The shipped vocabulary, or the one in ``path``."""
    from t2iaudit.yamlfile import read_yaml

    source = Path(path) if path else VOCABULARY_FILE
    return parse_vocabulary(read_yaml(source, "debias vocabulary"), source)
