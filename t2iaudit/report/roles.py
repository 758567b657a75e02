"""Roles of judge attributes (DESIGN.md "Attributes: roles"): protected, gate, check, count, caption."""

from __future__ import annotations

from typing import Any, Literal, cast

Role = Literal["protected", "gate", "check", "count", "caption"]

KNOWN_ROLES: dict[str, Role] = {
    "gender": "protected",
    "age": "protected",
    "race": "protected",
    "race_fairface": "protected",
    "ethnicity": "protected",
    "skin_tone": "protected",
    "person": "gate",
    "prompt_match": "check",
    "clipscore": "check",
    "shows_subject": "check",
    "person_count": "count",
    "face_count": "count",
    "caption": "caption",
}
"""Roles inferred from attribute names when a judge's manifest entry has no ``roles``."""


def base_attribute(attribute: str) -> str:
    """``gender.left`` -> ``gender`` (two-person prompts judge each side)."""
    return attribute.split(".", 1)[0]


def infer_role(attribute: str, labels: list[str] | None = None) -> Role:
    """The role of an attribute from its name, or from its labels when the name is not known.

    An unknown attribute with a categorical label set is a user's own scheme (a custom
    protected attribute, e.g. ``race_study``); free text is a caption and numbers are checks.
    """
    base = base_attribute(attribute)
    if "*" in base:  # an intersection of two attributes: protected when both parts are
        parts = [infer_role(p, None) for p in base.split("*")]
        return "protected" if all(p == "protected" for p in parts) else "check"
    if base in KNOWN_ROLES:
        return KNOWN_ROLES[base]
    if not labels:
        return "caption"
    if list(labels) == ["value"] or all(_numeric(x) for x in labels):
        return "check"
    return "protected"


def judge_roles(entry: dict[str, Any]) -> dict[str, Role]:
    """Role of each attribute a judge answers, from its manifest entry.

    ``entry["roles"]`` (attribute -> role) wins where given; other attributes are inferred.
    """
    declared = entry.get("roles") or {}
    out: dict[str, Role] = {}
    for attribute, labels in (entry.get("attributes") or {}).items():
        role = declared.get(attribute) or declared.get(base_attribute(attribute))
        out[attribute] = cast(Role, role) if role in KNOWN_ROLES.values() else infer_role(attribute, labels)
    return out


def _numeric(text: Any) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True
