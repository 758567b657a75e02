"""The verdict: which judge gives the headline, when a judge is called untrustworthy, what is said."""

from __future__ import annotations

from t2iaudit.report.options import ReportOptions
from t2iaudit.report.primary import choose_primary
from t2iaudit.report.roles import infer_role, judge_roles
from t2iaudit.report.rundata import load_run_data
from t2iaudit.report.trust import assess
from t2iaudit.report.verdict import build_verdict
from tests.report.builders import always, build_run, mostly

A, B = "alpha@1#aaaa", "beta@1#bbbb"
LENIENT = ReportOptions(require_calibration=False)


def coin(jid, pid, r, rng):
    return ["female", "male"][int(rng.integers(0, 2))]


def test_roles_are_inferred_from_names_and_declared_roles_win():
    names = ("gender", "race_fairface", "person", "clipscore", "person_count", "caption")
    assert [infer_role(a) for a in names] == ["protected", "protected", "gate", "check", "count", "caption"]
    assert infer_role("gender.left") == "protected" and infer_role("gender*race") == "protected"
    assert infer_role("race_study", ["White", "Black"]) == "protected"  # a user's own scheme
    assert infer_role("score", ["value"]) == "check" and infer_role("notes", []) == "caption"
    entry = {"attributes": {"gender": ["f", "m"], "person": ["yes", "no"]}, "roles": {"gender": "check"}}
    assert judge_roles(entry) == {"gender": "check", "person": "gate"}


def test_lowest_unknown_rate_is_primary_and_an_abstaining_judge_is_untrustworthy(tmp_path):
    store = build_run(tmp_path / "run", {A: mostly("male", unknown=0.5), B: mostly("male", unknown=0.1)})
    data = load_run_data(store.root)
    primary = choose_primary(data, "gender")
    assert primary.judge_id == B and primary.reason.startswith("lowest unknown rate")
    (row,) = build_verdict(data, data.options()).rows
    assert row.judge.judge_id == B and row.top_label == "male" and row.top_share > 0.8
    assert row.skew["value"] is not None and row.reference == "prompt"  # even prompts have a reference
    assert row.trust.reasons == ["no labelled calibration set measured its errors"]
    assert build_verdict(data, LENIENT).rows[0].trust.trustworthy  # 10% unknown, agrees with A
    weak = assess(data, A, "gender", "m1", LENIENT)
    assert any("unknown on" in r and "limit is 30%" in r for r in weak.reasons)
    assert assess(data, A, "gender", "m1", LENIENT.model_copy(update={"max_unknown_rate": 0.7})).trustworthy


def test_disagreeing_judges_are_untrustworthy_below_the_kappa_threshold(tmp_path):
    store = build_run(tmp_path / "run", {A: coin, B: coin}, prompts=4, replicates=20)
    data = load_run_data(store.root)
    row = build_verdict(data, LENIENT).rows[0]
    assert any("disagrees with beta@1" in r or "disagrees with alpha@1" in r for r in row.trust.reasons)
    assert build_verdict(data, LENIENT.model_copy(update={"min_kappa": -1.0})).rows[0].trust.trustworthy


def test_spec_primary_judges_wins_and_a_calibrated_judge_is_preferred(tmp_path):
    judges = {A: mostly("female", unknown=0.4), B: mostly("male")}
    named = build_run(tmp_path / "named", judges, primary_judges={"gender": "alpha"})
    data = load_run_data(named.root)
    assert choose_primary(data, "gender").reason == "primary_judges in the spec"
    assert build_verdict(data, data.options()).rows[0].top_label == "female"
    cal = tmp_path / "cal.csv"  # A's calibration set: true labels and A's own labels
    rows = [f"x{i}.png,female,female\n" for i in range(10)] + [f"y{i}.png,male,male\n" for i in range(10)]
    cal.write_text("path,gender,judged_gender\n" + "".join(rows))
    data = load_run_data(build_run(tmp_path / "cal", judges, calibration={A: str(cal)}).root)
    primary = choose_primary(data, "gender")
    assert primary.judge_id == A and primary.reason.startswith("has a calibration set")
    row = build_verdict(data, ReportOptions(max_unknown_rate=0.6, min_kappa=-1.0)).rows[0]
    assert row.trust.calibrated and row.trust.trustworthy, row.trust.reasons
    from t2iaudit.report.build import write_reports

    write_reports(data.root)
    html = (data.root / "report.html").read_text()
    assert "Judged vs error-corrected shares, gender: judge alpha@1" in html  # J3 beside the raw shares


def test_a_judge_without_labels_gives_no_number_and_says_so(tmp_path):
    data = load_run_data(build_run(tmp_path / "run", {A: always("unknown")}).root)
    verdict = build_verdict(data, data.options())
    assert "no labelled image" in verdict.sentences[0]
    assert verdict.overall.startswith("None of the 1 headline numbers")


def test_one_row_per_model_and_the_most_skewed_prompts_first(tmp_path):
    def skewed(jid, pid, r, rng):  # p1 all male, the others balanced
        return "male" if pid == "set/p1" or r % 2 else "female"

    store = build_run(tmp_path / "run", {A: skewed}, models=("m1", "m2"), prompts=4, replicates=10)
    verdict = build_verdict(load_run_data(store.root), ReportOptions(top_prompts=2))
    assert [r.model_id for r in verdict.rows] == ["m1", "m2"]
    for row in verdict.rows:
        values = [s.value for s in row.most_skewed]
        assert len(values) == 2 and values == sorted(values, reverse=True)


def test_one_colour_per_label_in_every_figure():
    from t2iaudit.report.palette import UNKNOWN_COLOUR, Palette

    palette = Palette(["female", "male"])
    first = palette["female"]
    palette.extend(["young", "female", "older"])
    assert palette["female"] == first and palette["unknown"] == UNKNOWN_COLOUR
    colours = [c for _, c in palette.items()]
    assert len(colours) == len(set(colours)) == 5
