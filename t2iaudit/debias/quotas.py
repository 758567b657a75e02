"""Largest-remainder apportionment (Hamilton's method): exact quotas instead of independent draws."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def apportion(n: int, target: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder apportionment of ``n`` items to classes with shares ``target``.

    Each class gets ``floor(n t_k)``; the items left go one each to the largest remainders
    ``n t_k - floor(n t_k)`` (ties: larger share first, then declared order). Every count is
    within one of ``n t_k``, and exact when ``n t_k`` is an integer, so the planning gap
    (METRICS.md, "Debiasing quality") is then 0.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    labels = list(target)
    t = np.array([float(target[k]) for k in labels])
    if (t < 0).any() or not np.isclose(t.sum(), 1.0):
        raise ValueError(f"target shares must be >= 0 and sum to 1 (sum is {t.sum():g})")
    exact = n * t
    base = np.floor(exact + 1e-9).astype(int)
    left = n - int(base.sum())
    remainder = np.where(exact - base > 1e-9, exact - base, 0.0)
    order = sorted(range(len(labels)), key=lambda i: (-remainder[i], -t[i], i))
    for i in order[:left]:
        base[i] += 1
    return {k: int(c) for k, c in zip(labels, base)}
