"""J1-J3: hand-computed kappas, abstention, and the judge-error correction (with a coverage
simulation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from t2iaudit.calibration import load_calibration
from t2iaudit.errors import InputError
from t2iaudit.metrics.compute import MetricsOptions, run_families
from t2iaudit.metrics.judge_validity.agreement import agreement_metrics, cohen_kappa, fleiss_kappa
from t2iaudit.metrics.judge_validity.correction import corrected_interval, corrected_shares, project_simplex
from t2iaudit.metrics.judge_validity.family import judge_validity_family
from t2iaudit.metrics.table import JudgementTable
from tests.metrics.builders import pick, records_table, row, table

GENDER = ["female", "male"]


def letters_table(
    labels: dict[str, str], label_sets: dict[str, list[str]], attribute: str = "gender"
) -> JudgementTable:
    """``labels[judge]`` is a string of f/m/u (female, male, unknown), one letter per image."""
    names = {"f": "female", "m": "male", "u": "unknown", "n": "nonbinary"}
    rows = [
        row(
            image_id=f"img{i}",
            model_id="m1" if i % 2 == 0 else "m2",
            prompt_id=f"p{i % 3}",
            judge_id=judge,
            attribute=attribute,
            label=names[letter],
        )
        for judge, letters in labels.items()
        for i, letter in enumerate(letters)
    ]
    return table(rows, {j: {attribute: ls} for j, ls in label_sets.items()})


OPTS = MetricsOptions(bootstrap_resamples=200, seed=0)


def test_cohen_kappa_hand_computed():
    a, b = np.array(list("aabbaabb")), np.array(list("aabbabba"))
    kappa, p_o = cohen_kappa(a, b, ["a", "b"])  # p_o = 6/8, p_e = 0.5
    assert p_o == 0.75 and kappa == pytest.approx(0.5)
    # Unbalanced marginals: p_o = 0.8, p_e = 0.7*0.7 + 0.3*0.3 = 0.58 -> kappa = 0.22/0.42.
    a, b = np.array(list("aaaaaaabbb")), np.array(list("aaaaaabbba"))
    assert cohen_kappa(a, b, ["a", "b"])[0] == pytest.approx(0.22 / 0.42)
    assert cohen_kappa(np.array(["a"] * 3), np.array(["a"] * 3), ["a", "b"]) == (None, 1.0)


def test_fleiss_kappa_hand_computed_and_wikipedia_example():
    ratings = np.array([list("aaa"), list("aab"), list("bbb"), list("abb")])
    assert fleiss_kappa(ratings, ["a", "b"]) == pytest.approx(1 / 3)  # P = 2/3, P_e = 1/2
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    wiki = np.array([sum(([str(k)] * c for k, c in enumerate(row)), []) for row in counts])
    assert fleiss_kappa(wiki, [str(k) for k in range(5)]) == pytest.approx(0.20993, abs=1e-5)  # Fleiss 1971 example


def test_j1_pairs_only_judges_with_matching_label_sets():
    t = letters_table(
        {"j1": "ffmmffmmf", "j2": "ffmmfmmfu", "j3": "ffmmffmmn"},
        {"j1": GENDER, "j2": ["male", "female"], "j3": [*GENDER, "nonbinary"]},
    )
    values = judge_validity_family(t, OPTS)
    kappa = pick(values, "J1_cohen_kappa", judge_id="j1", judge_id_b="j2", model_id=None)
    assert kappa.value == pytest.approx(0.5) and kappa.n == 8 and kappa.n_unknown == 1
    assert kappa.ci_low <= kappa.value <= kappa.ci_high
    raw = pick(values, "J1_raw_agreement", judge_id="j1", judge_id_b="j2", model_id=None)
    assert raw.value == 0.75 and raw.ci_low < 0.75 < raw.ci_high
    assert not [v for v in values if "j3" in v.scope.values() and v.metric.startswith("J1")]
    per_model = pick(values, "J1_cohen_kappa", model_id="m1", judge_id="j1", judge_id_b="j2")
    assert per_model.n == 4  # images 0, 2, 4, 6 (image 8 has an unknown)


def test_j1_fleiss_for_three_judges():
    t = letters_table({"j1": "fffm", "j2": "ffmm", "j3": "fmmm"}, {j: GENDER for j in ("j1", "j2", "j3")})
    values = judge_validity_family(t, MetricsOptions(bootstrap_resamples=0))
    fleiss = pick(values, "J1_fleiss_kappa", judge_ids="j1,j2,j3", model_id=None)
    assert fleiss.value == pytest.approx(1 / 3) and fleiss.n == 4 and fleiss.ci_low is None
    assert len([v for v in values if v.metric == "J1_cohen_kappa" and "model_id" not in v.scope]) == 3


def test_j1_single_image_and_all_unknown():
    one = judge_validity_family(letters_table({"j1": "f", "j2": "m"}, {"j1": GENDER, "j2": GENDER}), OPTS)
    k = pick(one, "J1_cohen_kappa", judge_id="j1", judge_id_b="j2", model_id=None)
    assert k.n == 1 and k.ci_low is None  # kappa = (0 - 0)/(1 - 0) = 0 for one disagreement
    assert k.value == 0.0
    none = judge_validity_family(letters_table({"j1": "uu", "j2": "fm"}, {"j1": GENDER, "j2": GENDER}), OPTS)
    k = pick(none, "J1_cohen_kappa", judge_id="j1", judge_id_b="j2", model_id=None)
    assert (k.value, k.n, k.n_unknown) == (None, 0, 2)


def test_j2_unknown_rate_per_judge_model_prompt():
    values = judge_validity_family(letters_table({"j1": "fuuufm"}, {"j1": GENDER}), OPTS)
    m1 = pick(values, "J2_unknown_rate", judge_id="j1", model_id="m1")  # images 0, 2, 4: f u f
    assert (m1.value, m1.n, m1.n_unknown) == (pytest.approx(1 / 3), 3, 1)
    p = pick(values, "J2_unknown_rate", judge_id="j1", model_id="m2", prompt_id="p1")  # image 1: u
    assert p.value == 1.0 and p.params["unknown_in_denominator"] is True


# -- J3 -----------------------------------------------------------------------------------------


def test_project_simplex():
    out = project_simplex(np.array([[0.5, 0.7, -0.1], [1 / 3, 1 / 3, 1 / 3], [2.0, 0.0, 0.0], [-1.0, -1.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.4, 0.6, 0], [1 / 3, 1 / 3, 1 / 3], [1, 0, 0], [0.0, 0.0, 1.0]])


def test_corrected_shares_inverts_a_known_confusion_matrix():
    c = np.array([[80, 20], [10, 90]])  # C = [[.8, .2], [.1, .9]]
    q = np.array([0.3, 0.7])
    p = np.array([[0.8, 0.2], [0.1, 0.9]]).T @ q
    np.testing.assert_allclose(corrected_shares(c, p * 1000), q, atol=1e-12)
    np.testing.assert_allclose(corrected_shares(np.eye(3) * 5, np.array([2, 3, 5])), [0.2, 0.3, 0.5])
    # A true class never seen in calibration: its row is taken as the identity.
    np.testing.assert_allclose(corrected_shares(np.array([[10, 0], [0, 0]]), np.array([1, 3])), [0.25, 0.75])


def test_corrected_interval_covers_truth_in_simulation():
    """A judge with a known confusion matrix labels images with a known true distribution."""
    rng = np.random.default_rng(2024)
    conf = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    truth = np.array([0.5, 0.3, 0.2])
    runs, covered = 200, np.zeros(3)
    for _ in range(runs):
        calibration = np.stack([rng.multinomial(100, conf[j]) for j in range(3)])
        true_counts = rng.multinomial(600, truth)
        judged = sum(rng.multinomial(true_counts[j], conf[j]) for j in range(3))
        _, low, high = corrected_interval(calibration, judged[None], 300, rng)
        covered += (low <= truth) & (truth <= high)
    assert (covered / runs >= 0.9).all(), covered / runs


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_load_calibration_reads_bom_and_any_column_order(tmp_path: Path):
    f = write(tmp_path / "cal.csv", "\ufeffjudged_gender,gender,path\nfemale,female,a.png\nmale,,b.png\n")
    cal = load_calibration(f)
    assert cal.paths == ["a.png", "b.png"] and cal.truth == {"gender": ["female", None]}
    true, judged = cal.pairs("gender")
    assert list(true) == ["female"] and list(judged) == ["female"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "empty file"),
        ("image,gender\na.png,female\n", "missing column 'path'"),
        ("path\na.png\n", "no attribute column"),
        ("path,gender\na.png,female\na.png,male\n", r"row 3, column path: duplicate image \(first in row 2\)"),
        ("path,gender\n,female\n", "row 2, column path: empty image path"),
        (b"path,gender\na.png,f\xe9male\n", "row 2: not UTF-8"),
    ],
)
def test_load_calibration_errors(tmp_path: Path, content: str | bytes, match: str):
    f = write(tmp_path / "cal.csv", content)
    with pytest.raises(InputError, match=match) as err:
        load_calibration(f)
    assert err.value.file == str(f)
    with pytest.raises(InputError, match="not found"):
        load_calibration(tmp_path / "missing.csv")


def test_j3_family_with_calibration_file(tmp_path: Path):
    rows = ["path,gender,judged_gender"] + [f"c{i}.png,female,female" for i in range(8)]
    rows += [f"d{i}.png,female,male" for i in range(2)] + [f"e{i}.png,male,male" for i in range(10)]
    f = write(tmp_path / "cal.csv", "\n".join(rows) + "\n")  # C = [[.8, .2], [0, 1]]
    t = letters_table({"j1": "ffffmmmmmu"}, {"j1": GENDER})  # p = (4/9, 5/9) over 9 labelled images
    opts = MetricsOptions(bootstrap_resamples=100, family_options={"judge_validity": {"calibration": {"j1": str(f)}}})
    values = [v for v in judge_validity_family(t, opts) if v.metric == "J3_corrected_share"]
    share = {(v.scope["model_id"], v.params["label"]): v for v in values}
    m1 = share[("m1", "female")]  # images 0,2,4,6,8: f f m m m -> p = (.4, .6); q_f = .4/.8 = .5
    assert m1.value == pytest.approx(0.5) and m1.params["judged_share"] == pytest.approx(0.4)
    assert m1.n == 5 and m1.params["n_calibration"] == 20 and m1.params["uncalibrated"] == []
    assert m1.params["unknown_in_denominator"] is False
    bad = write(tmp_path / "bad.csv", "path,gender,judged_gender\na.png,woman,female\n")
    opts = MetricsOptions(family_options={"judge_validity": {"calibration": {"j1": str(bad)}}})
    with pytest.raises(InputError, match="'woman' is not declared"):
        judge_validity_family(t, opts)


def test_safety_checker_black_images_count_as_unknown_with_their_reason():
    prompts = [{"prompt_id": "p", "set_id": "s", "template_id": "t", "expected_people": 1}]
    images = [
        {"image_id": f"i{k}", "model_id": "m", "prompt_id": "p", "replicate": k, "nsfw_flag": k == 2} for k in range(3)
    ]
    judgements = [
        {"image_id": f"i{k}", "judge_id": "j", "attribute": "gender", "label": "male", "scores": {}, "raw": None}
        for k in range(3)
    ]
    data = records_table(judgements, images, prompts, {"j": {"gender": ["female", "male"]}})
    assert list(data.frame["label"]) == ["male", "male", "unknown"]
    values = run_families(data, MetricsOptions(families=["judge_validity"], bootstrap_resamples=0))
    (failure,) = [v for v in values if v.metric == "J2_failure_rate"]
    assert failure.params["error"] == "nsfw_blacked_out" and failure.value == pytest.approx(1 / 3)


def test_j3_refuses_judged_labels_outside_the_declared_set(tmp_path: Path):
    """The found bug: J3 counted an undeclared label in n (it is in no class of the corrected shares)."""
    rows = ["path,gender,judged_gender"] + [f"c{i}.png,female,female" for i in range(5)]
    rows += [f"e{i}.png,male,male" for i in range(5)]
    f = write(tmp_path / "cal.csv", "\n".join(rows) + "\n")
    t = letters_table({"j1": "ffmmn"}, {"j1": GENDER})  # one image labelled "nonbinary", not declared
    opts = MetricsOptions(bootstrap_resamples=0, family_options={"judge_validity": {"calibration": {"j1": str(f)}}})
    with pytest.raises(InputError, match="label 'nonbinary' is not declared for judge 'j1', attribute 'gender'"):
        judge_validity_family(t, opts)


def test_every_judge_validity_value_says_whether_unknowns_are_in_the_denominator():
    values = judge_validity_family(
        letters_table({"j1": "ffmmu", "j2": "fmmmf", "j3": "ffmuu"}, dict.fromkeys(["j1", "j2", "j3"], GENDER)), OPTS
    )
    assert {v.metric for v in values} >= {"J1_cohen_kappa", "J1_raw_agreement", "J1_fleiss_kappa", "J2_unknown_rate"}
    assert all("unknown_in_denominator" in v.params for v in values)


def test_kappa_interval_resamples_prompts_only_when_generalising_over_them():
    """Two judges that agree on half the prompts and disagree on the other half, 200 images each:
    fixed prompts give a precise kappa; generalising over prompts carries how much prompts differ
    (issue 7, finding 9: dropping prompt resampling from the kappa bootstrap went unnoticed)."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    for j in range(8):
        truth = rng.choice(["female", "male"], 200)
        other = truth if j % 2 else np.where(rng.random(200) < 0.5, "female", "male")
        for judge, labels in (("a", truth), ("b", other)):
            for i, label in enumerate(labels):
                rows.append(
                    row(
                        image_id=f"p{j}/{i}",
                        model_id="m1",
                        prompt_id=f"p{j}",
                        replicate=i,
                        judge_id=judge,
                        label=str(label),
                    )
                )
    data = table(rows, {"a": {"gender": GENDER}, "b": {"gender": GENDER}})

    def kappa(estimand: str):
        opts = MetricsOptions(bootstrap_resamples=300, seed=0, estimand=estimand)
        return pick(agreement_metrics(data, opts, per_model=False), "J1_cohen_kappa", judge_id="a", judge_id_b="b")

    fixed, population = kappa("audited_prompts"), kappa("prompt_population")
    assert fixed.value == population.value
    assert population.ci_high - population.ci_low > 3 * (fixed.ci_high - fixed.ci_low)
    assert fixed.ci_low <= fixed.value <= fixed.ci_high
