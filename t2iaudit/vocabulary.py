"""One label vocabulary per attribute, attribute roles, and the declared mappings between schemes.

Every attribute a judge answers has a *role* (see ``docs/labels.md``):

- ``protected``: a perceived demographic attribute whose distribution is measured (perceived
  gender presentation, age group, race/ethnicity scheme, Monk skin tone, and users' own
  schemes). Only these feed the distribution (D1-D4, D8, D9) and BIGbench (D5-D7) metrics.
- ``gate``: is there a person at all (``person``).
- ``check``: does the image match the prompt (``prompt_match``, ``clipscore``,
  ``shows_subject``).
- ``count``: how many people (``person_count``).
- ``caption``: free text (``caption``).

Attributes named here take the role and the canonical label set below; ``.left``/``.right``
suffixes (two-person prompts) keep the base attribute's role and labels. Each race scheme is
its own attribute: ``race`` holds BIGbench's four groups (Luo et al. 2024, arXiv:2407.15240),
``race_fairface`` FairFace's seven (Karkkainen and Joo, WACV 2021). ``SCHEME_MAPPINGS`` declares
how groups of one scheme correspond to another; a group without a counterpart is *excluded*
(counted and reported), never turned into ``unknown``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["protected", "gate", "check", "count", "caption"]
ROLES: tuple[str, ...] = ("protected", "gate", "check", "count", "caption")
"""Every role an attribute can have."""

UNKNOWN = "unknown"
EXCLUDED = "(excluded)"
"""Marks, inside metric code only, an image whose label has no counterpart in a mapped scheme."""

GENDER = ("female", "male")
AGE = ("young", "middle-aged", "older")
SKIN_TONE = tuple(f"monk-{k}" for k in range(1, 11))
RACE = ("White", "East Asian", "Black", "South Asian")
RACE_FAIRFACE = ("White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern")
PERSON_COUNT = ("0", "1", "2", "3+")
YES_NO = ("yes", "no")


@dataclass(frozen=True)
class Vocabulary:
    """The canonical labels and role of one attribute."""

    attribute: str
    role: Role
    labels: tuple[str, ...] | None
    """Canonical labels (without ``unknown``); None for free text."""
    description: str


VOCABULARIES: dict[str, Vocabulary] = {
    v.attribute: v
    for v in (
        Vocabulary("gender", "protected", GENDER, "perceived gender presentation"),
        Vocabulary("age", "protected", AGE, "perceived age group: young 0-29, middle-aged 30-59, older 60+"),
        Vocabulary("skin_tone", "protected", SKIN_TONE, "perceived skin tone, Monk scale 1 (lightest) to 10"),
        Vocabulary("race", "protected", RACE, "perceived race, BIGbench's four groups"),
        Vocabulary("race_fairface", "protected", RACE_FAIRFACE, "perceived race, FairFace's seven groups"),
        Vocabulary("person", "gate", YES_NO, "is there a person in the image"),
        Vocabulary("person_count", "count", PERSON_COUNT, "how many people the image shows"),
        Vocabulary("face_count", "count", PERSON_COUNT, "how many faces the image shows"),
        Vocabulary("prompt_match", "check", ("match", "miss"), "TBYB: CLIP picks the prompt over a blank text"),
        Vocabulary("clipscore", "check", ("value",), "CLIPScore of the image against its prompt (a number)"),
        Vocabulary("shows_subject", "check", YES_NO, "does the image show the prompt's subject"),
        Vocabulary("caption", "caption", None, "a caption of the image (free text)"),
    )
}
"""Attribute name -> its canonical vocabulary and role."""


@dataclass(frozen=True)
class LabelMapping:
    """How the labels of one attribute (a judge's, or a scheme) correspond to a canonical attribute."""

    source: str
    """The attribute mapped from, e.g. ``race_fairface``."""
    target: str
    """The canonical attribute mapped to, e.g. ``race``."""
    labels: Mapping[str, str]
    """Source label -> target label, for every source label with a counterpart."""
    excluded: tuple[str, ...] = ()
    """Source labels with no counterpart: counted as excluded, never as ``unknown``."""
    note: str = ""

    def apply(self, label: str) -> str | None:
        """The target label of ``label``; ``unknown`` stays ``unknown``; None when excluded."""
        if label == UNKNOWN:
            return UNKNOWN
        return self.labels.get(label)

    def reachable(self) -> list[str]:
        """Target labels some source label maps to, in canonical order of the target."""
        hit = set(self.labels.values())
        canonical = canonical_labels(self.target) or tuple(sorted(hit))
        return [x for x in canonical if x in hit]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form recorded in the manifest (``maps_to`` of a judge entry)."""
        return {"to": self.target, "labels": dict(self.labels), "exclude": list(self.excluded)}

    @classmethod
    def from_dict(cls, source: str, data: Mapping[str, Any]) -> LabelMapping:
        return cls(source, str(data["to"]), dict(data.get("labels") or {}), tuple(data.get("exclude") or ()))


SCHEME_MAPPINGS: dict[str, LabelMapping] = {
    "race_fairface": LabelMapping(
        "race_fairface",
        "race",
        {"White": "White", "Black": "Black", "East Asian": "East Asian", "Indian": "South Asian"},
        ("Latino_Hispanic", "Southeast Asian", "Middle Eastern"),
        "FairFace groups with a BIGbench counterpart; the other three have none and are excluded",
    ),
}
"""Declared correspondences between schemes, by source attribute (one mapping per scheme)."""


def base_attribute(attribute: str) -> tuple[str, str]:
    """``gender.left`` -> (``gender``, ``.left``); ``gender`` -> (``gender``, ``""``)."""
    base, dot, suffix = attribute.partition(".")
    return base, dot + suffix


def vocabulary(attribute: str) -> Vocabulary | None:
    """The vocabulary of an attribute (suffixes ``.left``/``.right`` keep the base's), or None."""
    return VOCABULARIES.get(base_attribute(attribute)[0])


def canonical_labels(attribute: str) -> tuple[str, ...] | None:
    """Canonical labels of an attribute named in the vocabulary; None for others and free text."""
    v = vocabulary(attribute)
    return v.labels if v is not None else None


def default_role(attribute: str, labels: list[str] | tuple[str, ...] | None = None) -> Role:
    """The role of an attribute: from the vocabulary by name, else from its declared labels.

    An attribute outside the vocabulary is a user's own scheme (``protected``), unless its
    labels say otherwise: free text (no labels) is a ``caption``, a number (``["value"]``) a
    ``check``. Judge YAMLs may state other roles explicitly (``roles:``).
    """
    v = vocabulary(attribute)
    if v is not None:
        return v.role
    if labels is not None and len(labels) == 0:
        return "caption"
    if labels is not None and list(labels) == ["value"]:
        return "check"
    return "protected"


def scheme_mapping(attribute: str, labels: list[str] | tuple[str, ...] | None = None) -> LabelMapping | None:
    """The declared scheme mapping of an attribute (suffix kept: ``race_fairface.left`` -> ``race.left``).

    Args:
        attribute: The source attribute.
        labels: Restrict the mapping to these source labels (a judge declaring part of a scheme).
    """
    base, suffix = base_attribute(attribute)
    m = SCHEME_MAPPINGS.get(base)
    if m is None:
        return None
    keep = set(m.labels) | set(m.excluded) if labels is None else set(labels)
    mapped = {k: v for k, v in m.labels.items() if k in keep}
    return LabelMapping(attribute, m.target + suffix, mapped, tuple(x for x in m.excluded if x in keep), m.note)


ZERO_WORDS = frozenset({"none", "no person", "no people", "no one", "nobody", "no face", "zero"})
"""For a count attribute these mean ``0`` (for any other attribute they are abstentions)."""


def match_canonical(attribute: str, value: str) -> str | None:
    """The canonical label ``value`` names, compared case-insensitively (None when none).

    For count attributes (labels ``0``, ``1``, ``2``, ``3+``) whole numbers of 3 or more are
    ``3+`` and the ``ZERO_WORDS`` are ``0``.
    """
    labels = canonical_labels(attribute) or ()
    key = normalise_raw(value)
    found = next((x for x in labels if x.casefold() == key), None)
    if found is None and labels == PERSON_COUNT:
        if key in ZERO_WORDS:
            return "0"
        if key.isdigit():
            return "3+" if int(key) >= 3 else str(int(key))
    return found


ABSTENTIONS = frozenset(
    """unknown|unclear|uncertain|unsure|not sure|n/a|na|n.a.|none|null|nan|no person|no people|no one|
    nobody|no face|can't tell|cant tell|cannot tell|can not tell|can't say|cannot say|undetermined|
    indeterminate|ambiguous|skip|skipped|?|??|???|-|--""".replace("\n    ", "").split("|")
)
"""Raw values an annotator uses to abstain (compared after ``normalise_raw``); imported as ``unknown``."""


def normalise_raw(value: str) -> str:
    """Lower case, one space between words, typographic apostrophes made plain."""
    return re.sub(r"\s+", " ", value.replace("\u2019", "'").strip()).casefold()


def is_abstention(value: str, attribute: str = "") -> bool:
    """Whether a raw label value is a common way of saying "cannot tell" (or an empty cell).

    For a count attribute the ``ZERO_WORDS`` ("none", "no person", ...) are an answer, ``0``.
    """
    key = normalise_raw(value)
    if canonical_labels(attribute) == PERSON_COUNT and key in ZERO_WORDS:
        return False
    return not key or key in ABSTENTIONS


@dataclass(frozen=True)
class AttributeInfo:
    """Roles and mappings of one judge's attributes, resolved from its declared labels."""

    roles: dict[str, str]
    maps_to: dict[str, LabelMapping] = field(default_factory=dict)
    """Judge attribute -> its mapping to a canonical attribute (explicit or a scheme mapping)."""

    def manifest(self) -> dict[str, Any]:
        """``roles`` and ``maps_to`` as recorded in a manifest's judge entry."""
        return {"roles": dict(self.roles), "maps_to": {a: m.as_dict() for a, m in self.maps_to.items()}}


def resolve_attributes(
    declared: Mapping[str, list[str]],
    roles: Mapping[str, str] | None = None,
    maps_to: Mapping[str, LabelMapping] | None = None,
) -> AttributeInfo:
    """Roles (explicit, else ``default_role``) and mappings (explicit, else the scheme's) of a judge.

    Raises:
        ValueError: A problem with the declaration, naming the attribute (callers turn it into
            an InputError naming the file).
    """
    roles = dict(roles or {})
    explicit = dict(maps_to or {})
    out_roles: dict[str, str] = {}
    for attribute, labels in declared.items():
        v = vocabulary(attribute)
        role = roles.get(attribute)
        if role is not None and v is not None and role != v.role:
            raise ValueError(f"roles.{attribute}: {attribute!r} is a {v.role} attribute of the vocabulary")
        out_roles[attribute] = role or default_role(attribute, labels)
    if extra := sorted(set(roles) - set(declared)):
        raise ValueError(f"roles.{extra[0]}: the judge declares no attribute {extra[0]!r}")
    mappings: dict[str, LabelMapping] = {}
    for attribute, labels in declared.items():
        mapping = explicit.pop(attribute, None)
        if mapping is None:
            mapping = scheme_mapping(attribute, labels)
            if mapping is None:
                _check_canonical(attribute, labels)
                continue
            _check_canonical(attribute, labels)
        _check_mapping(attribute, labels, mapping)
        mappings[attribute] = mapping
    if explicit:
        name = sorted(explicit)[0]
        raise ValueError(f"maps_to.{name}: the judge declares no attribute {name!r}")
    targets: dict[str, str] = {}
    for attribute, mapping in mappings.items():
        if mapping.target != attribute and mapping.target in declared:
            raise ValueError(
                f"maps_to.{attribute}: maps to {mapping.target!r}, which this judge also answers; "
                "split the two into separate judges"
            )
        if mapping.target in targets:
            raise ValueError(f"maps_to.{attribute}: {targets[mapping.target]!r} maps to {mapping.target!r} too")
        targets[mapping.target] = attribute
    return AttributeInfo(out_roles, mappings)


def _check_canonical(attribute: str, labels: list[str]) -> None:
    canonical = canonical_labels(attribute)
    if canonical is None:
        return
    bad = [x for x in labels if x not in canonical]
    if bad:
        raise ValueError(
            f"attribute {attribute!r}: labels {bad} are not in its canonical vocabulary {list(canonical)}; "
            f"use the canonical names or declare maps_to.{attribute} (see docs/labels.md)"
        )


def _check_mapping(attribute: str, labels: list[str], mapping: LabelMapping) -> None:
    where = f"maps_to.{attribute}"
    target = canonical_labels(mapping.target)
    if target is None:
        raise ValueError(f"{where}: {mapping.target!r} is not an attribute with a canonical vocabulary")
    source_base = base_attribute(attribute)[0]
    if vocabulary(attribute) is not None and base_attribute(mapping.target)[0] != source_base:
        declared_scheme = SCHEME_MAPPINGS.get(source_base)
        if declared_scheme is None or declared_scheme.target != base_attribute(mapping.target)[0]:
            raise ValueError(f"{where}: {attribute!r} is a vocabulary attribute; it can only map onto itself")
    if base_attribute(mapping.target)[1] != base_attribute(attribute)[1]:
        raise ValueError(f"{where}: {attribute!r} and {mapping.target!r} are not the same side (.left/.right)")
    for label in [*mapping.labels, *mapping.excluded]:
        if label not in labels:
            raise ValueError(f"{where}: {label!r} is not a declared label of {attribute!r} ({labels})")
    for label, to in mapping.labels.items():
        if to not in target:
            raise ValueError(f"{where}.labels.{label}: {to!r} is not a label of {mapping.target!r} {list(target)}")
    if both := set(mapping.labels) & set(mapping.excluded):
        raise ValueError(f"{where}: {sorted(both)[0]!r} is both mapped and excluded")
    missing = [x for x in labels if x not in mapping.labels and x not in mapping.excluded]
    if missing:
        raise ValueError(
            f"{where}: labels {missing} have no counterpart in {mapping.target!r} {list(target)}: "
            "map each one (labels) or list it under exclude"
        )


def judge_answers(declared: Mapping[str, list[str]], maps_to: Mapping[str, LabelMapping]) -> dict[str, list[str]]:
    """Attribute -> the labels a judge can give it *after* mapping (what a prompt may ask for).

    A judge attribute with a mapping onto itself answers the mapped labels; one mapped onto
    another attribute (``race_fairface`` -> ``race``) answers both.
    """
    out = {a: list(labels) for a, labels in declared.items()}
    for mapping in maps_to.values():
        out[mapping.target] = mapping.reachable()
    return out
