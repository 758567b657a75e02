"""``t2iaudit compare`` and t2iaudit.metrics.compare on hand-built tables and run directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from t2iaudit.errors import InputError
from t2iaudit.metrics.compare import Between, compare
from t2iaudit.metrics.significance import holm
from t2iaudit.metrics.table import JudgementTable
from tests.metrics.builders import counted_rows
from tests.metrics.builders import table as judgement_table


def rows(model: str, prompt: str, counts: dict[str, int], **meta) -> list[dict]:
    return counted_rows(prompt, counts, model=model, **meta)


def table(data: list[dict]) -> JudgementTable:
    return judgement_table(data, {"j": {"gender": ["female", "male"]}})


def two_cells() -> JudgementTable:
    data = rows("A", "p1", {"female": 4, "male": 6, "unknown": 3}) + rows("B", "p1", {"female": 9, "male": 1})
    data += rows("A", "p2", {"female": 2, "male": 8}) + rows("B", "p2", {"female": 5, "male": 5, "unknown": 1})
    return table(data)


def test_chi2_examples_and_holm() -> None:
    out = compare(two_cells(), Between("model_id", "A", "B"), "gender", by=["prompt_id"], drop=["unknown"])
    p1 = out[(out.prompt_id == "p1") & (out.label == "female")].iloc[0]
    assert (round(p1.chi2, 4), p1.dof, round(p1.p_value, 5)) == (5.4945, 1, 0.01908)
    assert (p1.count_a, p1.count_b, p1.n_a, p1.n_b) == (4, 9, 10, 10)
    assert (p1.prop_a, p1.prop_b, p1["diff"]) == (0.4, 0.9, pytest.approx(-0.5))
    assert p1.diff_low < -0.5 < p1.diff_high
    p2 = out[(out.prompt_id == "p2") & (out.label == "female")].iloc[0]
    assert (round(p2.chi2, 4), round(p2.p_value, 5)) == (1.9780, 0.15960)
    # Expected counts 3.5 < 5 in both cells: Fisher is reported and enters Holm.
    f1 = sps.fisher_exact([[4, 6], [9, 1]]).pvalue
    f2 = sps.fisher_exact([[2, 8], [5, 5]]).pvalue
    assert p1.fisher_p == pytest.approx(f1) and p2.fisher_p == pytest.approx(f2) and p1.test == "fisher"
    # Each cell's unknown rate is a test of its own (3/13 vs 0/10; 0/10 vs 1/11), also in Holm.
    u1 = out[(out.prompt_id == "p1") & (out.label == "(unknown rate)")].iloc[0]
    u2 = out[(out.prompt_id == "p2") & (out.label == "(unknown rate)")].iloc[0]
    assert (u1.count_a, u1.n_a, u1.count_b, u1.n_b) == (3, 13, 0, 10) and u1.test_of == "unknown rate"
    assert u1.fisher_p == pytest.approx(sps.fisher_exact([[3, 10], [0, 10]]).pvalue)
    assert u2.fisher_p == pytest.approx(sps.fisher_exact([[0, 10], [1, 10]]).pvalue)
    expected = holm([f1, f2, u1.fisher_p, u2.fisher_p]).tolist()
    assert [p1.p_holm, p2.p_holm, u1.p_holm, u2.p_holm] == pytest.approx(expected)
    assert "unknown" not in set(out.label)  # unknown is kept apart, not a dropped category


def test_no_fisher_when_expected_large_and_unknown_kept() -> None:
    data = rows("A", "p", {"female": 20, "male": 30}) + rows("B", "p", {"female": 35, "male": 15})
    out = compare(table(data), Between("model_id", "A", "B"), "gender")
    row = out.iloc[0]
    assert row.fisher_p is None and row.test == "chi2" and row.p_holm == pytest.approx(row.p_value)
    ref = sps.chi2_contingency([[20, 30], [35, 15]], correction=False)
    assert row.chi2 == pytest.approx(ref.statistic) and row.p_value == pytest.approx(ref.pvalue)
    # Unknowns are kept apart by default: an unknown-rate row (none here: 0 vs 0, no test).
    assert set(out.label) == {"female", "male", "(unknown rate)"} and row.dof == 1
    # --include-unknown: unknown is a label like the others (here never seen: left out of dof).
    old = compare(table(data), Between("model_id", "A", "B"), "gender", include_unknown=True)
    assert set(old.label) == {"female", "male", "unknown"} and old.iloc[0].dof == 1
    assert old.iloc[0].chi2 == pytest.approx(row.chi2)


def test_between_metadata_column() -> None:
    data = rows("A", "orig", {"female": 1, "male": 9}, variant="original")
    data += rows("A", "deb", {"female": 6, "male": 4}, variant="debiased")
    out = compare(table(data), Between("variant", "original", "debiased"), "gender", by=["model_id"])
    female = out[out.label == "female"].iloc[0]
    assert (female.count_a, female.count_b, female.model_id) == (1, 6, "A")


def test_bad_input_names_the_field() -> None:
    t = two_cells()
    with pytest.raises(InputError, match="--by.*unknown column 'nope'"):
        compare(t, Between("model_id", "A", "B"), "gender", by=["nope"])
    with pytest.raises(InputError, match="--between.*'C' not found in column 'model_id'"):
        compare(t, Between("model_id", "A", "C"), "gender")
    with pytest.raises(InputError, match="--attribute"):
        compare(t, Between("model_id", "A", "B"), "age")
    with pytest.raises(InputError, match="--drop"):
        compare(t, Between("model_id", "A", "B"), "gender", drop=["unknwn"])
    for text in ("model_id", "model_id=A", "model_id=A,A", "=A,B"):
        with pytest.raises(InputError, match="--between"):
            Between.parse(text)
    assert Between.parse("run=r1, r2") == Between("run", "r1", "r2")


def write_run(root: Path, model: str, counts: dict[str, int]) -> Path:
    from t2iaudit.run.store import RunStore
    from t2iaudit.types import ImageRecord, Judgement, Prompt

    store = RunStore(root)
    store.write_manifest({"judges": {"j": {"attributes": {"gender": ["female", "male"]}}}})
    store.write_prompts([Prompt(prompt_id="p", set_id="s", template_id="t", text="a photo of a doctor")])
    labels = [label for label, k in counts.items() for _ in range(k)]
    images = [
        ImageRecord(
            image_id=f"{model}/p/{i}",
            model_id=model,
            prompt_id="p",
            replicate=i,
            seed=i,
            path=f"images/{i}.png",
            sha256="0" * 64,
            width=8,
            height=8,
        )
        for i in range(len(labels))
    ]
    store.append_images(images)
    store.append_judgements(
        [
            Judgement(image_id=im.image_id, judge_id="j", attribute="gender", label=label)
            for im, label in zip(images, labels)
        ]
    )
    return root


def test_cli_compare_two_runs(tmp_path: Path) -> None:
    from t2iaudit.cli import app

    r1 = write_run(tmp_path / "run1", "m", {"female": 4, "male": 6})
    r2 = write_run(tmp_path / "run2", "m", {"female": 9, "male": 1, "unknown": 2})
    runner = CliRunner()
    args = ["compare", str(r1), str(r2), "--between", "run=run1,run2", "--attribute", "gender", "--drop", "unknown"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.strip()]
    female = next(x for x in lines if x["label"] == "female")
    assert round(female["chi2"], 4) == 5.4945 and round(female["p_value"], 5) == 0.01908
    assert next(x for x in lines if x["label"] == "(unknown rate)")["count_b"] == 2
    table_out = runner.invoke(app, [*args, "--format", "table", "--by", "model_id"])
    assert table_out.exit_code == 0 and "female" in table_out.stdout
    bad = runner.invoke(app, [*args[:-2], "--by", "colour"])
    assert bad.exit_code == 2 and "unknown column 'colour'" in bad.output
    absent = runner.invoke(app, ["compare", str(r1), "--between", "run=run1,run9", "--attribute", "gender"])
    assert absent.exit_code == 2 and "'run9' not found" in absent.output
    assert np.isfinite(female["diff_low"])


def test_a_difference_in_abstention_is_not_a_difference_in_labels() -> None:
    """The found bug: A = 30 F / 30 M / 0 U against B = 30 F / 30 M / 40 U was reported as female
    0.5 vs 0.3, chi2 32, p 1e-7. The labels are tested among valid labels; the unknown rate on its own."""
    data = rows("A", "p", {"female": 30, "male": 30}) + rows("B", "p", {"female": 30, "male": 30, "unknown": 40})
    out = compare(table(data), Between("model_id", "A", "B"), "gender")
    female = out[out.label == "female"].iloc[0]
    assert (female.prop_a, female.prop_b, female.n_a, female.n_b) == (0.5, 0.5, 60, 60)
    assert female.chi2 == pytest.approx(0.0) and female.p_value == pytest.approx(1.0)
    rate = out[out.label == "(unknown rate)"].iloc[0]
    assert (rate.count_a, rate.n_a, rate.count_b, rate.n_b) == (0, 60, 40, 100)
    assert (rate.prop_a, rate.prop_b, rate.dof) == (0.0, 0.4, 1) and rate.test_of == "unknown rate"
    reference = sps.chi2_contingency([[0, 60], [40, 60]], correction=False)
    assert rate.chi2 == pytest.approx(reference.statistic) and rate.p_value == pytest.approx(reference.pvalue)
    assert rate.diff_low < -0.4 < rate.diff_high < 0
    assert [female.p_holm, rate.p_holm] == pytest.approx(holm([female.p_value, rate.p_value]).tolist())
    old = compare(table(data), Between("model_id", "A", "B"), "gender", include_unknown=True)  # --include-unknown
    assert old[old.label == "female"].iloc[0].prop_b == pytest.approx(0.3)
    with pytest.raises(InputError, match="--include-unknown"):
        compare(table(data), Between("model_id", "A", "B"), "gender", drop=["unknown"], include_unknown=True)


def test_compare_refuses_labels_the_judge_does_not_declare() -> None:
    data = rows("A", "p", {"female": 3, "male": 2}) + rows("B", "p", {"female": 1, "woman": 2})
    with pytest.raises(InputError, match="label 'woman' is not declared for judge 'j', attribute 'gender'") as err:
        compare(table(data), Between("model_id", "A", "B"), "gender")
    assert err.value.field == "judge j, attribute gender, label"


def test_comparing_two_judges_keeps_every_declared_label() -> None:
    data = rows("A", "p", {"female": 3, "male": 2})
    data += [
        {**r, "judge_id": "k", "image_id": r["image_id"] + "k"} for r in rows("A", "p", {"female": 1, "nonbinary": 2})
    ]
    t = JudgementTable(
        pd.DataFrame(data), {"j": {"gender": ["female", "male"]}, "k": {"gender": ["female", "nonbinary"]}}
    )
    out = compare(t, Between("judge_id", "j", "k"), "gender")
    counts = {r.label: (r.count_a, r.count_b) for r in out.itertuples() if r.test_of == "labels"}
    assert counts == {"female": (3, 1), "male": (2, 0), "nonbinary": (0, 2)}
