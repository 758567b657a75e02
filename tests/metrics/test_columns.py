"""The distribution metrics by label columns give the bits of the formulas, whatever the arrays."""

from __future__ import annotations

import numpy as np
import pytest

from t2iaudit.metrics.compute import LabelRoles, MetricsOptions
from t2iaudit.metrics.distribution import columns
from t2iaudit.metrics.distribution.evaluate import Roles, evaluate, evaluate_formulas

LABELS = {
    "gender": ["female", "male"],
    "age": ["young", "middle-aged", "older"],
    "race": ["White", "East Asian", "Black", "South Asian"],
}


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (a -0.0 is not a +0.0); any NaN equals any NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(((a.view(np.int64) == b.view(np.int64)) | (np.isnan(a) & np.isnan(b))).all())


def assert_same(want: dict, got: dict) -> None:
    assert list(got) == list(want)  # the same metrics, in the same order (records follow it)
    for key in want:
        assert same_bits(want[key], got[key]), key
        assert np.asarray(got[key]).flags.c_contiguous


def draw_counts(rng: np.random.Generator, lead: tuple[int, ...], prompts: int, labels: int) -> np.ndarray:
    """Multinomial counts ``(*lead, prompts, labels + 1)``: some prompts with few or no images."""
    m = rng.integers(0, 25, prompts)
    theta = rng.dirichlet(np.full(labels + 1, 0.4), prompts)
    return rng.multinomial(np.broadcast_to(m, (*lead, prompts)), np.broadcast_to(theta, (*lead, prompts, labels + 1)))


def references(rng: np.random.Generator, prompts: int, labels: int) -> dict[str, np.ndarray]:
    """Uniform, per-prompt rows (NaN where none applies, some zero shares) and one fixed row."""
    own = rng.dirichlet(np.ones(labels), prompts)
    own[rng.random(prompts) < 0.5] = np.nan
    own[rng.random(prompts) < 0.2, 0] = 0.0
    return {
        "uniform": np.full((prompts, labels), 1.0 / labels),
        "prompt": own,
        "table": np.tile(rng.dirichlet(np.ones(labels)), (prompts, 1)),
    }


@pytest.mark.parametrize("labels", [2, 3, 4, 8, 9, 10, 17])
@pytest.mark.parametrize(
    "options",
    [
        MetricsOptions(),
        MetricsOptions(unknown_in_denominator=True, skin_tone_unknown_in_denominator=False, kl_eps=1e-3),
    ],
)
def test_columns_give_the_formulas_bits(labels: int, options: MetricsOptions, monkeypatch) -> None:
    monkeypatch.setattr(columns, "BLOCK", 64)  # blocks across both the draws and the prompts
    rng = np.random.default_rng(labels)
    attribute = {2: "gender", 3: "age"}.get(labels, "skin_tone")
    names = LABELS.get(attribute, [f"c{i}" for i in range(labels)])
    roles = Roles.of(attribute, names, options)
    for prompts, lead in [(1, ()), (37, ()), (90, (3,)), (23, (4, 3))]:
        counts = draw_counts(rng, lead, prompts, labels)
        refs = references(rng, prompts, labels)
        for array in (counts, counts.astype(np.float64), counts * 1.37):
            assert columns.supported(array, refs)
            assert_same(
                evaluate_formulas(array, refs, roles, options), columns.evaluate_columns(array, refs, roles, options)
            )


def test_roles_of_gender_age_and_skin_tone_are_all_evaluated() -> None:
    options = MetricsOptions(roles=LabelRoles(skin_tone="race"))
    rng = np.random.default_rng(1)
    for attribute, names in LABELS.items():
        roles = Roles.of(attribute, names, options)
        counts = draw_counts(rng, (5,), 40, len(names))
        refs = references(rng, 40, len(names))
        got = columns.evaluate_columns(counts, refs, roles, options)
        want = evaluate_formulas(counts, refs, roles, options)
        assert_same(want, got)
        role_metric = {"gender": "D2_gender_imbalance", "age": "D8_signed_imbalance", "race": "D3_skin_tone_imbalance"}
        assert ("", role_metric[attribute]) in got


def test_row_sum_adds_as_numpy_sums_a_row() -> None:
    rng = np.random.default_rng(2)
    for width in range(1, 30):
        # Magnitudes far apart make the order of the additions visible in the last bits.
        rows = rng.standard_normal((500, width)) * 10.0 ** rng.integers(-8, 9, (500, width))
        rows[:3] = -0.0  # numpy's sum of -0.0s is +0.0
        got = columns.row_sum([np.ascontiguousarray(rows[:, j]) for j in range(width)])
        assert same_bits(rows.sum(axis=-1), got), width
        assert not np.signbit(got[:3]).any()


def test_evaluate_uses_the_formulas_for_arrays_the_columns_do_not_take() -> None:
    rng = np.random.default_rng(3)
    options = MetricsOptions()
    roles = Roles.of("age", LABELS["age"], options)
    counts = draw_counts(rng, (), 30, 3)
    refs = references(rng, 30, 3)
    fortran = np.asfortranarray(counts)  # a table's counts: its sums over prompts add in another order
    assert not columns.supported(fortran, refs)
    assert not columns.supported(counts.astype(np.float32), refs)
    assert columns.supported(counts, refs)
    want = evaluate_formulas(fortran, refs, roles, options)
    got = evaluate(fortran, refs, roles, options)
    assert list(got) == list(want) and all(got[k].strides == want[k].strides for k in want)
    assert_same(evaluate_formulas(counts, refs, roles, options), evaluate(counts, refs, roles, options))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 12])
def test_sorting_network_sorts_every_zero_one_row(n: int) -> None:
    # The 0-1 principle: a comparator network that sorts every 0/1 sequence sorts every sequence.
    rows = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    cols = [rows[:, j].astype(float) for j in range(n)]
    got = np.stack(columns._sorted(cols), axis=1)
    assert (got == np.sort(rows, axis=1)).all()
