"""Validate a plan request's targets against the vocabulary: classes, shares, joint tables."""

from __future__ import annotations

from dataclasses import dataclass

from t2iaudit.debias.planner import UNSPECIFIED
from t2iaudit.debias.schema import PlanRequest
from t2iaudit.debias.vocab import Vocabulary
from t2iaudit.errors import InputError

SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Joint:
    """A validated joint table."""

    attributes: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]
    shares: tuple[float, ...]


def resolve_targets(request: PlanRequest, vocab: Vocabulary) -> dict[str, dict[str, float]]:
    """Attribute -> class -> share (summing to 1), from the request and the vocabulary's classes."""
    out: dict[str, dict[str, float]] = {}
    for attr, spec in request.attributes.items():
        where = f"attributes.{attr}"
        if attr not in vocab.classes:
            raise InputError(f"unknown attribute {attr!r} (known: {', '.join(vocab.classes)})", field=where)
        classes = list(spec.classes or vocab.classes[attr])
        allowed = [*vocab.classes[attr], UNSPECIFIED]
        bad = [c for c in classes if c not in allowed]
        if bad:
            raise InputError(f"unknown classes {bad} (known: {', '.join(allowed)})", field=f"{where}.classes")
        if len(set(classes)) != len(classes):
            raise InputError("a class is listed twice", field=f"{where}.classes")
        if spec.target == "uniform":
            shares = [1.0 / len(classes)] * len(classes)
        else:
            shares = list(spec.target)
            if len(shares) != len(classes):
                raise InputError(f"{len(shares)} shares for {len(classes)} classes", field=f"{where}.target")
            if abs(sum(shares) - 1.0) > SUM_TOLERANCE:
                raise InputError(f"shares sum to {sum(shares):.6g}, not 1", field=f"{where}.target")
        total = sum(shares)
        out[attr] = {c: s / total for c, s in zip(classes, shares)}
    _same_scheme(out, vocab)
    return out


def _same_scheme(targets: dict[str, dict[str, float]], vocab: Vocabulary) -> None:
    names = list(targets)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = set(vocab.phrases[a].values()) & set(vocab.phrases[b].values())
            if shared:
                raise InputError(
                    f"{a!r} and {b!r} share phrases {sorted(shared)}: they are two schemes of one attribute; ask for one",
                    field=f"attributes.{b}",
                )


def resolve_joint(request: PlanRequest, targets: dict[str, dict[str, float]]) -> Joint | None:
    """The joint table, checked against the targets' classes; None when the request has none."""
    if not request.joint:
        return None
    attrs = tuple(request.joint[0].classes)
    cells: list[tuple[str, ...]] = []
    for i, cell in enumerate(request.joint):
        where = f"joint[{i}].classes"
        if tuple(cell.classes) != attrs:
            raise InputError(f"every cell must name the attributes {list(attrs)} in that order", field=where)
        for attr, cls in cell.classes.items():
            if attr not in targets:
                raise InputError(f"attribute {attr!r} is not in 'attributes'", field=where)
            if cls not in targets[attr]:
                raise InputError(f"class {cls!r} is not among the classes of {attr!r}", field=where)
        cells.append(tuple(cell.classes.values()))
    if len(set(cells)) != len(cells):
        raise InputError("a cell is listed twice", field="joint")
    shares = [c.share for c in request.joint]
    if abs(sum(shares) - 1.0) > SUM_TOLERANCE:
        raise InputError(f"cell shares sum to {sum(shares):.6g}, not 1", field="joint")
    return Joint(attrs, tuple(cells), tuple(s / sum(shares) for s in shares))


def joint_marginal(joint: Joint, attr: str) -> dict[str, float]:
    """The marginal shares of one attribute of a joint table."""
    j = joint.attributes.index(attr)
    out: dict[str, float] = {}
    for cell, share in zip(joint.cells, joint.shares):
        out[cell[j]] = out.get(cell[j], 0.0) + share
    return out
