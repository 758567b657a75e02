"""The planner: exact quotas per attribute (largest remainder), paired across attributes by a seeded shuffle.

Each *group* is one attribute of one subject (a slot), or several slots that a user-given joint
table apportions together. A group's cells get ``apportion(n, shares)`` items, listed and
shuffled with a key derived from the request, and item ``i`` takes the ``i``-th cell of every
group's list. So every group's counts are within one of ``n x share`` (exact when ``n x
share`` is an integer) and groups are paired at random, yet the plan depends only on its key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from t2iaudit.debias.quotas import apportion
from t2iaudit.debias.shuffle import seeded_shuffle

UNSPECIFIED = "unspecified"
"""The class that leaves an attribute out of the rewrite; it has a quota like any other class."""


@dataclass(frozen=True)
class Group:
    """Slots planned together: one attribute of one subject, or the slots of a joint table."""

    slots: tuple[str, ...]
    """Slot names, e.g. ``("gender",)`` or ``("gender.1", "race.1")``."""
    cells: tuple[tuple[str, ...], ...]
    """One class per slot for each cell of the group."""
    shares: tuple[float, ...]
    """The share of each cell (non-negative, summing to 1)."""

    @classmethod
    def single(cls, slot: str, shares: Mapping[str, float]) -> Group:
        """A group of one slot with ``shares`` over its classes."""
        return cls((slot,), tuple((k,) for k in shares), tuple(float(v) for v in shares.values()))


@dataclass(frozen=True)
class Plan:
    """Assignments for ``n`` items and the counts behind them."""

    assignments: list[dict[str, str]]
    """Item ``i``'s class for every slot."""
    marginals: dict[str, dict[str, int]]
    """Per slot, the number of items planned for each class (classes in declared order)."""
    cell_counts: dict[tuple[str, ...], list[int]]
    """Per group (by its slots), the number of items for each of its cells."""


def _normalised(shares: Sequence[float]) -> list[float]:
    total = float(sum(shares))
    if total <= 0 or any(s < 0 for s in shares):
        raise ValueError("shares must be non-negative with a positive sum")
    return [s / total for s in shares]


def plan(n: int, groups: Sequence[Group], key: str) -> Plan:
    """Assign a class to every slot of ``n`` items.

    Args:
        n: Number of items.
        groups: Groups with disjoint slots.
        key: Everything the plan depends on besides ``groups`` (seed, prompt); the shuffle of
            each group is keyed by ``key`` and the group's slots.
    """
    seen: set[str] = set()
    assignments: list[dict[str, str]] = [{} for _ in range(n)]
    marginals: dict[str, dict[str, int]] = {}
    cell_counts: dict[tuple[str, ...], list[int]] = {}
    for group in groups:
        if seen & set(group.slots):
            raise ValueError(f"slot planned twice: {sorted(seen & set(group.slots))}")
        seen |= set(group.slots)
        shares = _normalised(group.shares)
        counts = apportion(n, {str(i): s for i, s in enumerate(shares)})
        cell_counts[group.slots] = [counts[str(i)] for i in range(len(shares))]
        listed = [cell for i, cell in enumerate(group.cells) for _ in range(counts[str(i)])]
        order = seeded_shuffle(listed, f"{key}\x1e{'|'.join(group.slots)}")
        for item, cell in zip(assignments, order):
            item.update(zip(group.slots, cell))
        for j, slot in enumerate(group.slots):
            margin = marginals.setdefault(slot, {})
            for cell, c in zip(group.cells, cell_counts[group.slots]):
                margin[cell[j]] = margin.get(cell[j], 0) + c
    return Plan(assignments, marginals, cell_counts)
