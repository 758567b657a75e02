"""What a prompt analysis finds: human subjects, the attributes the prompt states, reasons to leave it alone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, get_args

from pydantic import Field

from t2iaudit.types import Record

AbstainCode = Literal[
    "NAMED_PERSON",
    "HISTORICAL_CONTEXT",
    "FICTIONAL_CONTEXT",
    "NO_HUMAN_SUBJECT",
    "ALL_ATTRIBUTES_STATED",
    "UNSUPPORTED_LANGUAGE",
]
"""The closed list of reasons to leave a prompt unchanged (docs/debias.md, "Abstain codes")."""
ABSTAIN_CODES: tuple[str, ...] = get_args(AbstainCode)
SubjectMode = Literal["each", "first"]
"""Which human subjects get planned attributes: every one, or the first (others named in a warning)."""


class Subject(Record):
    """One human subject noun of a prompt."""

    noun: str
    """The noun or compound noun as written (``police officer``); phrases are inserted before it."""
    start: int
    """Character offset of the noun in the prompt."""
    end: int
    """Character offset just past the noun."""
    plural: bool = False
    """True for a plural noun (``doctors``): a planned attribute then applies to the whole group."""
    stated: dict[str, str] = Field(default_factory=dict)
    """Attributes the prompt states for this subject (``a female doctor`` -> ``{gender: female}``)."""


class Analysis(Record):
    """The analysis of one prompt."""

    prompt: str
    """The prompt analysed."""
    subjects: list[Subject] = Field(default_factory=list)
    """Human subjects in order of appearance (none inside a named or fictional person's name)."""
    context: list[AbstainCode] = Field(default_factory=list)
    """Reasons found in the prompt itself: named people, historical or fictional context, language."""
    evidence: list[str] = Field(default_factory=list)
    """What the analyser matched, for people reading the response (``named person: 'Marie Curie'``)."""
    analyser: str = "rules"
    """Which analyser answered (``rules``, ``lm:<model>``)."""
    fallback: str | None = None
    """Why an LM analysis was replaced by the rules' (its output did not validate), else None."""


class Analyser(Protocol):
    """Anything that analyses a prompt."""

    name: str

    def analyse(self, prompt: str) -> Analysis: ...


def sort_codes(codes: Iterable[str]) -> list[str]:
    """Distinct codes in the closed list's order."""
    found = set(codes)
    return [c for c in ABSTAIN_CODES if c in found]


def planned_subjects(analysis: Analysis, mode: SubjectMode = "each") -> list[int]:
    """Indices of the subjects that get planned attributes."""
    return list(range(len(analysis.subjects))) if mode == "each" else list(range(min(1, len(analysis.subjects))))


def abstain_reasons(analysis: Analysis, attributes: Iterable[str], mode: SubjectMode = "each") -> list[str]:
    """Why the prompt is left alone for a request over ``attributes`` (empty: rewrite it).

    ``NO_HUMAN_SUBJECT`` is given only when no other reason explains the missing subject;
    ``ALL_ATTRIBUTES_STATED`` when every planned subject states every requested attribute.
    """
    codes = list(analysis.context)
    if not analysis.subjects and not codes:
        codes.append("NO_HUMAN_SUBJECT")
    wanted = set(attributes)
    chosen = planned_subjects(analysis, mode)
    if chosen and wanted and all(wanted <= set(analysis.subjects[i].stated) for i in chosen):
        codes.append("ALL_ATTRIBUTES_STATED")
    return sort_codes(codes)
