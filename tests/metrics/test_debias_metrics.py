"""Debiasing-quality metrics: apportionment, planning gap, realisation, text and image checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2iaudit.metrics.debias import (
    alignment_to_original,
    apportion,
    check_rewrite,
    clipscore,
    cosine_rows,
    mask_inserted,
    paired_image_similarity,
    planning_gap,
    realisation,
    realisation_rate,
    text_preservation,
)


def test_apportion_largest_remainder():
    assert apportion(10, {"female": 0.5, "male": 0.5}) == {"female": 5, "male": 5}
    assert apportion(10, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 4, "b": 3, "c": 3}  # tie: declared order
    assert apportion(7, {"a": 0.45, "b": 0.35, "c": 0.2}) == {"a": 3, "b": 3, "c": 1}  # 3.15, 2.45, 1.4
    assert apportion(0, {"a": 1.0}) == {"a": 0}
    with pytest.raises(ValueError, match="sum to 1"):
        apportion(3, {"a": 0.5, "b": 0.4})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=6).filter(lambda c: sum(c) > 0), st.integers(1, 5))
def test_planning_gap_is_zero_when_targets_are_integral(weights: list[int], scale: int):
    n = sum(weights) * scale
    target = {f"k{i}": w / sum(weights) for i, w in enumerate(weights)}
    counts = apportion(n, target)
    assert sum(counts.values()) == n
    assert planning_gap(counts, target) == pytest.approx(0.0, abs=1e-12)


def test_planning_gap_total_variation():
    assert planning_gap(["f", "f", "f", "m"], {"f": 0.5, "m": 0.5}) == pytest.approx(0.25)
    assert planning_gap({"f": 2, "x": 2}, {"f": 0.5, "m": 0.5}) == pytest.approx(0.5)  # x not in target
    with pytest.raises(ValueError):
        planning_gap([], {"f": 1.0})


def test_realisation_rate_and_matrix():
    planned = ["female", "female", "male", "male", "female"]
    judged = ["female", "male", "male", "unknown", "female"]
    r = realisation_rate(planned, judged)
    assert (r.value, r.n, r.n_unknown) == (pytest.approx(3 / 4), 4, 1) and r.ci_low < 0.75 < r.ci_high
    assert realisation_rate(planned, judged, unknown_in_denominator=True).value == pytest.approx(3 / 5)
    values, m = realisation(planned, judged, ["female", "male", "nonbinary"])
    assert values == ["female", "male"]
    np.testing.assert_allclose(m, [[2 / 3, 1 / 3, 0], [0, 1, 0]])
    assert realisation_rate(["f"], ["unknown"]).value is None


def test_text_preservation_and_masking():
    orig = np.array([[1.0, 0.0], [1.0, 1.0]])
    rew = np.array([[1.0, 0.0], [1.0, -1.0]])
    np.testing.assert_allclose(cosine_rows(orig, rew), [1.0, 0.0])
    est = text_preservation(orig, rew, resamples=100)
    assert est.value == pytest.approx(0.5) and est.n == 2 and est.ci_low <= 0.5 <= est.ci_high
    assert mask_inserted("a photo of a nurse", "a photo of a male nurse", ["male"]) == "a photo of a nurse"
    assert mask_inserted("a photo of an engineer", "a photo of a female engineer", ["female"]) == (
        "a photo of a engineer"
    )


@pytest.mark.parametrize(
    ("original", "rewritten", "subject", "ok"),
    [
        ("a photo of a nurse", "a photo of a male nurse", "nurse", True),
        ("a photo of an engineer", "a photo of a female engineer", "engineer", True),  # a/an agreement
        ("a photo of a police officer", "a photo of a Black female police officer", "police officer", True),
        ("a photo of a doctor", "a photo of a doctor, female", "doctor", True),  # right after the subject
        ("a photo of a doctor", "a female photo of a doctor", "doctor", False),  # away from the subject
        ("a photo of a doctor", "a photo of a smiling female doctor", "doctor", False),  # not planned
        ("a photo of a doctor", "a picture of a female doctor", "doctor", False),  # changed word
        ("a photo of a doctor", "a female doctor", "doctor", False),  # deleted words
        ("a photo of a doctor", "a photo of a female nurse", "doctor", False),
        ("a photo of a chef", "a photo of a female chef", "doctor", False),  # subject missing
    ],
)
def test_structural_rule(original: str, rewritten: str, subject: str, ok: bool):
    check = check_rewrite(original, rewritten, subject, ["female", "male", "Black"])
    assert check.ok is ok, check.violations
    if ok:
        assert check.inserted and not check.violations


def test_clipscore_alignment_change_and_paired_similarity():
    txt = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    orig_img = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cos 1, 1/sqrt2, 0
    deb_img = np.array([[1.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])  # cos 1/sqrt2, 1/sqrt2, -1 -> 0
    np.testing.assert_allclose(clipscore(orig_img, txt), [2.5, 2.5 / np.sqrt(2), 0.0])
    out = alignment_to_original(deb_img, orig_img, txt, resamples=100)
    assert out["debiased"].value == pytest.approx(2.5 * (2 / np.sqrt(2)) / 3)
    assert out["original"].value == pytest.approx(2.5 * (1 + 1 / np.sqrt(2)) / 3)
    assert out["change"].value == pytest.approx(out["debiased"].value - out["original"].value)
    sim = paired_image_similarity(deb_img, orig_img, resamples=100)
    expected = np.mean([1 / np.sqrt(2), 1.0, 0.0])
    assert sim.value == pytest.approx(expected) and sim.n == 3
    with pytest.raises(ValueError, match="shapes differ"):
        cosine_rows(np.ones((2, 3)), np.ones((3, 3)))
