"""Significance tests of t2iaudit.metrics.significance (chi-square, Fisher, Holm) against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from t2iaudit.metrics import significance


def test_chi2_compare_examples() -> None:
    chi2, dof, p, expected = significance.pearson_chi2(np.array([[4, 6], [9, 1]]))
    assert (round(chi2, 4), dof, round(p, 5)) == (5.4945, 1, 0.01908)
    assert expected.tolist() == [[6.5, 3.5], [6.5, 3.5]]
    chi2, dof, p, _ = significance.pearson_chi2(np.array([[2, 8], [5, 5]]))
    assert (round(chi2, 4), dof, round(p, 5)) == (1.9780, 1, 0.15960)
    # df = 1 uses 1 - erf(sqrt(chi2/2)); agrees with scipy's chi2 tail.
    assert p == pytest.approx(1 - math.erf(math.sqrt(chi2 / 2)), rel=1e-12)


def test_chi2_general_df_and_empty_columns() -> None:
    table = np.array([[10, 5, 0, 5], [4, 6, 0, 10]])
    chi2, dof, p, _ = significance.pearson_chi2(table)
    ref = sps.chi2_contingency(table[:, [0, 1, 3]], correction=False)
    assert dof == 2 and chi2 == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert np.isnan(significance.pearson_chi2(np.array([[3, 0], [4, 0]]))[0])


def test_fisher_2x2_and_2xk() -> None:
    p, method = significance.fisher_exact(np.array([[4, 6], [9, 1]]))
    assert method == "exact" and p == pytest.approx(sps.fisher_exact([[4, 6], [9, 1]]).pvalue)
    # 2 x 4: brute-force sum over all tables with the margins (hand-checked: 0.12004662...).
    p, method = significance.fisher_exact(np.array([[3, 1, 0, 2], [1, 4, 2, 0]]))
    assert method == "exact" and p == pytest.approx(0.120046620046620, abs=1e-12)
    assert math.isnan(significance.fisher_exact(np.array([[3, 0], [2, 0]]))[0])


def test_fisher_monte_carlo_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    table = np.array([[3, 1, 0, 2], [1, 4, 2, 0]])
    monkeypatch.setattr(significance, "_FISHER_MAX_TABLES", 1)
    p, method = significance.fisher_exact(table, rng=np.random.default_rng(0), draws=50_000)
    assert method == "monte-carlo" and p == pytest.approx(0.12005, abs=0.01)


def test_holm() -> None:
    adjusted = significance.holm([0.01, 0.04, 0.03, np.nan, 0.005])
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert adjusted[[4, 0, 2, 1]] == pytest.approx([0.02, 0.03, 0.06, 0.06])
    assert np.isnan(adjusted[3])
    assert significance.holm([0.6, 0.7]).tolist() == [1.0, 1.0]
