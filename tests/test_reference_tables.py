"""Users' reference tables (reading, import-labels/metrics --reference, spec references), and D10/D11
on imported runs checked against independent implementations. The D10/D11 functions on hand-built
counts: tests/metrics/test_against_reference.py."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from t2iaudit.cli import app
from t2iaudit.errors import InputError
from t2iaudit.reference_tables import read_reference_table

RACE = ["White", "East Asian", "Black", "South Asian"]
LABEL_SETS = {"gender": ["female", "male"], "race": RACE}


def write_csv(path: Path, rows: list[list[object]], header=("prompt_id", "attribute", "label", "share")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# -- reference tables ----------------------------------------------------------------------


def test_table_normalises_per_prompt_and_attribute_and_fills_unlisted_labels(tmp_path, caplog):
    path = write_csv(
        tmp_path / "ref.csv",
        [
            ["p1", "gender", "female", 60],
            ["p1", "gender", "male", 40],
            ["p1", "race", "White", 0.45],
            ["p1", "race", "Black", 0.45],  # sums to 0.9: normalised, with a warning
            ["p2", "gender", "female", 0.2],
            ["p2", "gender", "male", 0.8],
        ],
    )
    table = read_reference_table(path, ["p1", "p2", "p3"], LABEL_SETS)
    assert table.distributions["p1"]["gender"] == {"female": 0.6, "male": 0.4}
    assert table.distributions["p1"]["race"] == {"White": 0.5, "East Asian": 0.0, "Black": 0.5, "South Asian": 0.0}
    scales = {(n["prompt_id"], n["attribute"]): n["scale"] for n in table.normalisation}
    assert scales == {("p1", "gender"): "percent", ("p1", "race"): "other", ("p2", "gender"): "fraction"}
    assert len(table.warnings) == 1 and "sum to 0.9" in table.warnings[0]
    assert table.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


BAD_TABLES = [
    ([["nope", "gender", "female", 1]], "row 2, column prompt_id", "unknown prompt id"),
    ([["p1", "gender", "female", 1], ["p1", "gender", "nonbinary", 0]], "row 3, column label", "not in the label set"),
    ([["p1", "gender", "female", -0.1]], "row 2, column share", "negative"),
    ([["p1", "gender", "female", 0], ["p1", "gender", "male", 0]], "row 2, column share", "sum to 0"),
    ([["p1", "religion", "x", 1]], "row 2, column attribute", "no label set"),
    ([["p1", "gender", "female", "half"]], "row 2, column share", "not a number"),
    ([["p1", "gender", "female", 1], ["p1", "gender", "female", 1]], "row 3, column label", "listed twice"),
]


@pytest.mark.parametrize(("rows", "where", "message"), BAD_TABLES)
def test_bad_tables_name_file_row_and_column(tmp_path, rows, where, message):
    path = write_csv(tmp_path / "ref.csv", rows)
    with pytest.raises(InputError, match=message) as err:
        read_reference_table(path, ["p1"], LABEL_SETS)
    assert err.value.file == str(path) and err.value.field == where


# -- end to end through import-labels and metrics ------------------------------------------


def labelled_rows(rng: np.random.Generator) -> tuple[list[list[object]], dict[str, float]]:
    """Six prompts x 50 images; gender and race labels, some unknown; the true female shares."""
    rows = []
    female = {f"job{j}": x for j, x in enumerate([0.1, 0.3, 0.5, 0.62, 0.8, 0.95])}
    for prompt, share in female.items():
        for i in range(50):
            gender = "unclear" if rng.random() < 0.08 else ("female" if rng.random() < share else "male")
            race = RACE[int(rng.choice(4, p=[0.55, 0.15, 0.2, 0.1]))]
            rows.append([f"{prompt}/{i}", "sd", prompt, gender, race])
    return rows, female


def reference_rows() -> list[list[object]]:
    shares = {"job0": 0.2, "job1": 0.3, "job2": 0.55, "job3": 0.6, "job4": 0.5, "job5": 0.97}
    out: list[list[object]] = []
    for prompt, f in shares.items():
        out += [[prompt, "gender", "female", f], [prompt, "gender", "male", round(1 - f, 4)]]
    out += [["job0", "race", "White", 0.7], ["job0", "race", "Black", 0.3]]  # East/South Asian: share 0
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("refs")
    rows, _ = labelled_rows(np.random.default_rng(0))
    labels = write_csv(tmp / "labels.csv", rows, ("image_id", "model_id", "prompt_id", "gender", "race"))
    ref = write_csv(tmp / "ref.csv", reference_rows())
    run = tmp / "run"
    result = CliRunner().invoke(app, ["import-labels", str(labels), "--out", str(run), "--reference", str(ref)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["metrics", str(run)])
    assert result.exit_code == 0, result.output
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return run, ref, rows, metrics


def _holm(p: list[float]) -> list[float]:
    order = np.argsort(p)
    m, out, running = len(p), [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_import_with_a_reference_table_every_d10_d11_value_checked_independently(imported):
    run, ref, rows, metrics = imported
    manifest = json.loads((run / "manifest.json").read_text())
    entry = manifest["reference_tables"][0]
    assert entry["sha256"] == hashlib.sha256(ref.read_bytes()).hexdigest()
    assert (run / entry["path"]).read_bytes() == ref.read_bytes()
    reference = {r[0]: float(r[3]) for r in reference_rows() if r[1] == "gender" and r[2] == "female"}
    counts = {p: [0, 0] for p in reference}
    for _, _, prompt, gender, _ in rows:
        if gender in ("female", "male"):
            counts[prompt][gender == "male"] += 1

    def rows_of(metric, **params):
        return [
            m
            for m in metrics
            if m["metric"] == metric
            and m["attribute"] == "gender"
            and all(m["params"].get(k) == v for k, v in params.items())
        ]

    spd = {
        m["scope"]["prompt_id"]: m["value"]
        for m in rows_of("D10_spd", reference="prompt", label="female")
        if "prompt_id" in m["scope"]
    }
    gof = {m["scope"]["prompt_id"]: m for m in rows_of("D10_gof_p", reference="prompt")}
    amp = {
        m["scope"]["prompt_id"]: m
        for m in rows_of("D11_amplification", reference="prompt")
        if "prompt_id" in m["scope"]
    }
    assert set(spd) == set(gof) == set(amp) == set(reference)
    p_used, exact_used = {}, []
    for prompt, (f, m) in counts.items():
        n, r = f + m, reference[prompt]
        assert spd[prompt] == pytest.approx(f / n - r)
        test = sps.chisquare([f, m], [n * r, n * (1 - r)])
        assert gof[prompt]["value"] == pytest.approx(test.pvalue)
        small = min(n * r, n * (1 - r)) < 5
        if small:  # exact: outcomes at least as extreme by the chi-square statistic
            x = np.arange(n + 1)
            stat = (x - n * r) ** 2 / (n * r) + (n - x - n * (1 - r)) ** 2 / (n * (1 - r))
            exact = sps.binom.pmf(x, n, r)[stat >= test.statistic - 1e-9].sum()
            assert gof[prompt]["params"]["exact_p"] == pytest.approx(exact)
        p_used[prompt] = gof[prompt]["params"]["exact_p"] if small else test.pvalue
        exact_used.append(small)
        tv_pr, tv_pu, tv_ru = abs(f / n - r), abs(f / n - 0.5), abs(r - 0.5)
        assert amp[prompt]["value"] == pytest.approx(tv_pu - tv_ru)
        want = "reflected" if tv_pr < 0.04 else "amplified" if tv_pu > tv_ru else "mitigated"
        assert amp[prompt]["params"]["class"] == want
    assert any(exact_used) and not all(exact_used)
    prompts = sorted(p_used)
    for prompt, adjusted in zip(prompts, _holm([p_used[p] for p in prompts])):
        assert gof[prompt]["params"]["p_holm"] == pytest.approx(adjusted)
    significant = sum(gof[p]["params"]["p_holm"] < 0.05 for p in prompts)
    assert rows_of("D10_gof_significant_share", reference="prompt")[0]["value"] == pytest.approx(significant / 6)
    classes = [amp[p]["params"]["class"] for p in prompts]
    for cls in ("amplified", "reflected", "mitigated"):
        share = rows_of(f"D11_{cls}_share", reference="prompt")[0]
        assert share["value"] == pytest.approx(classes.count(cls) / 6) and share["n"] == 6
    race = [m for m in metrics if m["metric"] == "D10_gof_p" and m["attribute"] == "race"]
    assert [m["scope"]["prompt_id"] for m in race] == ["job0"]  # only job0 has a race reference
    if any(r[4] in ("East Asian", "South Asian") for r in rows if r[2] == "job0"):
        assert race[0]["value"] == 0.0 and "reference share 0" in race[0]["params"]["note"]


@pytest.mark.parametrize(("rows", "where", "message"), BAD_TABLES[:4])
def test_bad_table_on_an_existing_run_exits_2_and_changes_nothing(imported, tmp_path, rows, where, message):
    run = imported[0]
    fixed = [[{"p1": "job0"}.get(str(c), c) if i == 0 else c for i, c in enumerate(r)] for r in rows]
    bad = write_csv(tmp_path / "bad.csv", fixed)
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}
    result = CliRunner().invoke(app, ["metrics", str(run), "--reference", str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.output and where in result.output and message in result.output
    after = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}
    assert after == before


def test_bad_table_on_import_writes_no_run_directory(tmp_path):
    rows, _ = labelled_rows(np.random.default_rng(1))
    labels = write_csv(tmp_path / "labels.csv", rows, ("image_id", "model_id", "prompt_id", "gender", "race"))
    bad = write_csv(tmp_path / "bad.csv", [["job9", "gender", "female", 1]])
    result = CliRunner().invoke(
        app, ["import-labels", str(labels), "--out", str(tmp_path / "run"), "--reference", str(bad)]
    )
    assert result.exit_code == 2 and "row 2, column prompt_id" in result.output
    assert not (tmp_path / "run").exists()


def test_user_table_takes_precedence_over_the_prompt_sets_reference_per_attribute(tmp_path):
    """An occupation prompt keeps BIGbench's race reference and gets the user's gender reference."""
    rows = [
        [f"i{i}", "sd", "nurse", "female" if i < 8 else "male", "White", "bigbench/occupation/Nurse"] for i in range(10)
    ]
    labels = write_csv(
        tmp_path / "labels.csv", rows, ("image_id", "model_id", "prompt_id", "gender", "race", "reference")
    )
    ref = write_csv(tmp_path / "ref.csv", [["nurse", "gender", "female", 0.5], ["nurse", "gender", "male", 0.5]])
    run = tmp_path / "run"
    assert (
        CliRunner().invoke(app, ["import-labels", str(labels), "--out", str(run), "--reference", str(ref)]).exit_code
        == 0
    )
    assert CliRunner().invoke(app, ["metrics", str(run)]).exit_code == 0
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    tv = {
        m["attribute"]: m
        for m in metrics
        if m["metric"] == "D9_tv" and m["params"].get("reference") == "prompt" and "prompt_id" in m["scope"]
    }
    assert tv["gender"]["value"] == pytest.approx(0.3)  # 0.8 against the user's 0.5
    from t2iaudit.promptsets import resolve_reference

    white = resolve_reference("bigbench/occupation/Nurse")["race"]["White"]
    assert tv["race"]["value"] == pytest.approx(1 - white)  # BIGbench's race reference kept
    assert tv["gender"]["params"]["reference_key"].startswith("ref-")


def test_audit_spec_references_are_checked_at_load_and_kept_in_the_run(tmp_path, astronaut):
    from tests.helpers import replay_spec

    spec = replay_spec(tmp_path, astronaut, [["astro.png", "astronauts/photo/an-astronaut"]] * 2)
    astro = "astronauts/photo/an-astronaut"
    write_csv(tmp_path / "bad.csv", [[astro, "gender", "female", 0.3], ["astronauts/photo/x", "gender", "male", 1]])
    spec.write_text(spec.read_text() + "references: [bad.csv]\n")
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2 and "bad.csv: row 3, column prompt_id" in result.output
    assert not (tmp_path / "run").exists()
    ref = write_csv(tmp_path / "ref.csv", [[astro, "gender", "female", 0.3], [astro, "gender", "male", 0.7]])
    spec.write_text(spec.read_text().replace("bad.csv", "ref.csv"))
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["reference_tables"][0]["sha256"] == hashlib.sha256(ref.read_bytes()).hexdigest()
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    spd = [m for m in metrics if m["metric"] == "D10_spd" and m["scope"].get("prompt_id") == astro]
    assert {m["params"]["label"]: m["value"] for m in spd} == pytest.approx({"female": 0.7, "male": -0.7})
