"""The metric catalog and the family registry: every metric a family emits is catalogued (and every
catalogued metric is emitted), sources reach ``params.source``, options are checked by name, and a
family from another package registers through an entry point."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t2iaudit.metrics import catalog, compute
from t2iaudit.metrics.catalog import METRICS, MetricInfo
from t2iaudit.metrics.compute import BUILT_IN, FAMILIES, MetricFamily, MetricsOptions, run_families
from t2iaudit.metrics.table import JudgementTable
from t2iaudit.registry import Registry
from t2iaudit.types import MetricValue
from tests.metrics.builders import image_rows, row, table

GENDER, AGE = ["female", "male"], ["young", "middle-aged", "older"]
RACE = ["White", "East Asian", "Black", "South Asian"]
MONK = [f"monk-{i}" for i in range(1, 11)]


def distribution_table() -> JudgementTable:
    """Gender, age, race, skin tone; prompt references and two judges of gender."""
    rng = np.random.default_rng(0)
    rows = []
    for j, prompt in enumerate(["p1", "p2", "p3"]):
        labels = {
            "gender": list(rng.choice([*GENDER, "unknown"], 12)),
            "age": list(rng.choice(AGE, 12)),
            "race": list(rng.choice(RACE, 12)),
            "skin_tone": list(rng.choice(MONK, 12)),
        }
        rows += image_rows(prompt, labels, judge="j1", reference="ref/a" if j < 2 else None)
        rows += image_rows(prompt, {"gender": list(rng.choice(GENDER, 12))}, judge="j2")
    sets = {"j1": {"gender": GENDER, "age": AGE, "race": RACE, "skin_tone": MONK}, "j2": {"gender": GENDER}}
    refs = {"ref/a": {"gender": {"female": 0.3, "male": 0.7}, "race": dict(zip(RACE, [0.4, 0.2, 0.2, 0.2]))}}
    return table(rows, sets, refs)


def bigbench_table() -> JudgementTable:
    """The two prompts of the shipped contrast pair ``pair1`` and an explicit prompt."""
    rng = np.random.default_rng(1)
    ref = {
        "gender": dict.fromkeys(GENDER, 0.5),
        "race": dict.fromkeys(RACE, 0.25),
        "age": dict(zip(AGE, [0.5, 0.3, 0.2])),
    }
    rows = []
    for prompt, key in (("traits/bigbench/rich", "bigbench/characteristic/rich"), ("traits/bigbench/poor", None)):
        labels = {
            "gender": list(rng.choice(GENDER, 6)),
            "race": list(rng.choice(RACE, 6)),
            "age": list(rng.choice(AGE, 6)),
        }
        rows += image_rows(prompt, labels, reference=key or "bigbench/characteristic/poor", weight=2)
    explicit = {"gender": ["female", "male", "female"], "race": ["White"] * 3, "age": ["young"] * 3}
    rows += image_rows("explicit/gender/a-female-doctor", explicit, requested_gender="female")
    refs = {"bigbench/characteristic/rich": ref, "bigbench/characteristic/poor": ref}
    return table(rows, {"j": {"gender": GENDER, "race": RACE, "age": AGE}}, refs)


def hallucination_table() -> JudgementTable:
    """Captions, prompt matches, person counts, requested and context-fixed gender."""
    text = {"prompt_text": "a photo of a doctor"}
    rows = [
        row(image_id=f"i{i}", replicate=i, judge_id="cap", attribute="caption", label="text", raw=raw, **text)
        for i, raw in enumerate(["a doctor in a hospital", "a woman with a dog", "a doctor with a cat"])
    ]
    rows += [
        row(image_id=f"i{i}", judge_id="clip", attribute="prompt_match", label=x)
        for i, x in enumerate(["match", "miss"])
    ]
    rows += [
        row(image_id=f"i{i}", judge_id="face", attribute="person_count", label=x) for i, x in enumerate(["1", "2"])
    ]
    rows += [
        row(image_id=f"i{i}", judge_id="face", label=x, requested_gender="female", fixed_gender="female")
        for i, x in enumerate(["female", "male"])
    ]
    sets = {"cap": {"caption": []}, "clip": {"prompt_match": ["match", "miss"]}}
    sets["face"] = {"person_count": ["0", "1", "2", "3+"], "gender": GENDER}
    return table(rows, sets)


def validity_table(calibration: Path) -> JudgementTable:
    """Three judges of gender (one records failures), a mapped race scheme with excluded labels."""
    rng = np.random.default_rng(2)
    rows = []
    for i in range(12):
        truth = rng.choice(GENDER)
        for judge in ("ja", "jb", "jc"):
            label = (
                "unknown" if judge == "jb" and i % 5 == 0 else str(truth if rng.random() < 0.8 else rng.choice(GENDER))
            )
            error = "timeout" if label == "unknown" else None
            rows.append(row(image_id=f"i{i}", prompt_id=f"p{i % 3}", judge_id=judge, label=label, error=error))
        rows.append(
            row(
                image_id=f"i{i}",
                judge_id="jf",
                attribute="race",
                label=str(rng.choice(RACE)),
                mapped_from="race_fairface",
            )
        )
    excluded = pd.DataFrame(
        [
            dict(
                image_id="x",
                model_id="m",
                prompt_id="p1",
                judge_id="jf",
                attribute="race",
                source_attribute="race_fairface",
                label="Middle Eastern",
            )
        ]
    )
    calibration.write_text(
        "path,gender,judged_gender\n"
        + "".join(f"c{i}.png,female,{'female' if i % 4 else 'male'}\n" for i in range(8))
        + "d.png,male,male\n"
    )
    sets = {j: {"gender": GENDER} for j in ("ja", "jb", "jc")} | {"jf": {"race": RACE}}
    return table(rows, sets, excluded=excluded, calibration={"ja": str(calibration)})


def fairness_table() -> JudgementTable:
    """A numeric score per image for the gender variants of two occupations."""
    rows = [
        row(
            image_id=f"{occ}/{g}/{i}",
            prompt_id=f"{occ}/{g}",
            replicate=i,
            judge_id="cs",
            attribute="clipscore",
            label="value",
            value=0.3 + 0.01 * i + (0.02 if g == "male" else 0.0),
            requested_gender=g,
            slot_occupation=occ,
            slot_gender=g,
        )
        for occ in ("doctor", "nurse")
        for g in GENDER
        for i in range(2)
    ]
    return table(rows, {"cs": {"clipscore": ["value"]}})


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Family -> the metrics it emitted over the rich tables, every family run on every table."""
    tables = [distribution_table(), bigbench_table(), hallucination_table(), fairness_table()]
    tables.append(validity_table(tmp_path_factory.mktemp("calibration") / "cal.csv"))
    options = MetricsOptions(
        bootstrap_resamples=0,
        references=["uniform", "prompt", "census"],
        custom_references={"census": {"gender": {"female": 0.6, "male": 0.4}}},
        family_options={"hallucination": {"lexicon": "shipped"}},
    )
    out: dict[str, set[str]] = {name: set() for name in BUILT_IN}
    for name in BUILT_IN:
        for data in tables:
            out[name] |= {v.metric for v in FAMILIES.get(name).compute(data, options)}
    return out


def test_every_emitted_metric_is_catalogued_under_its_family(emitted: dict[str, set[str]]) -> None:
    for family, metrics in emitted.items():
        for metric in metrics:
            assert metric in METRICS, metric
            assert METRICS.get(metric).family == family, metric


def test_every_catalogued_metric_is_emitted_by_its_family(emitted: dict[str, set[str]]) -> None:
    for name in METRICS.names():
        info = METRICS.get(name)
        assert name in emitted[info.family], (name, info.family)


def test_built_in_families_carry_their_catalog_entries_and_options_models() -> None:
    assert set(BUILT_IN) <= set(FAMILIES.names())  # other installed packages may add theirs
    assert set(BUILT_IN) == {METRICS.get(name).family for name in METRICS.names()}
    for name in BUILT_IN:
        family = FAMILIES.get(name)
        assert family.metrics == catalog.family_metrics(name) and family.metrics
        assert family.options_model is None or family.options_model.model_config.get("frozen")
    assert FAMILIES.get("judge_fairness").options_model is None
    assert FAMILIES.get("hallucination").options_model.__name__ == "HallucinationOptions"


def test_catalog_entries_are_complete_and_headlines_are_catalogued() -> None:
    for name in METRICS.names():
        info = METRICS.get(name)
        assert info.id == name and info.description and str(info) == info.description
        assert info.lower_is_better in (True, False, None)
    assert set(catalog.HEADLINE) <= set(METRICS.names())
    assert catalog.headline_metrics() == sorted(catalog.HEADLINE)
    assert METRICS.get("D9_tv").lower_is_better is True and METRICS.get("J1_cohen_kappa").lower_is_better is False
    assert METRICS.get("share").lower_is_better is None and METRICS.get("D9_tv").headline


def test_run_families_adds_each_metrics_source(emitted: dict[str, set[str]], tmp_path: Path) -> None:
    values = run_families(distribution_table(), MetricsOptions(bootstrap_resamples=0))
    values += run_families(validity_table(tmp_path / "cal.csv"), MetricsOptions(bootstrap_resamples=0))
    assert {v.metric for v in values} >= {"share", "D1_mad", "D10_gof_p", "J1_cohen_kappa", "J2_unknown_rate"}
    for v in values:
        assert v.params.get("source") == METRICS.get(v.metric).source, v.metric
    assert next(v for v in values if v.metric == "D11_amplification").params["source"] == catalog.AMPLIFICATION


def test_options_name_families_metrics_and_family_options() -> None:
    with pytest.raises(ValueError, match="unknown metric family 'halucination'; did you mean 'hallucination'"):
        MetricsOptions(families=["halucination"])
    with pytest.raises(ValueError, match="unknown metric 'D9_tvv'; did you mean 'D9_tv'"):
        MetricsOptions(metrics=["D9_tvv"])
    with pytest.raises(ValueError, match="options for unknown metric family 'bigbenh'; did you mean 'bigbench'"):
        MetricsOptions(family_options={"bigbenh": {}})
    with pytest.raises(ValueError, match="metric family 'bigbench' takes no options"):
        MetricsOptions(family_options={"bigbench": {"x": 1}})
    with pytest.raises(ValueError, match="judge_validity.per_prompts"):
        MetricsOptions(family_options={"judge_validity": {"per_prompts": False}})
    assert MetricsOptions(families=["bigbench"], family_options={"distribution": {"alpha": 0.01}}).families == [
        "bigbench"
    ]


def _plugin_family(table: JudgementTable, options: MetricsOptions) -> list[MetricValue]:
    n = len(table.frame)
    return [MetricValue(metric="X1_rows", attribute="all", scope={}, value=float(n), n=n, n_unknown=0)]


PLUGIN = MetricFamily(
    compute=_plugin_family,
    metrics=(MetricInfo("X1_rows", "rows", "rows of the judgement table", source="a plugin paper"),),
)
"""A family another installed package would register under the entry-point group ``t2iaudit.metrics``."""


def test_a_family_from_another_package_registers_through_an_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    registry: Registry[MetricFamily] = Registry("metric family", entry_points="t2iaudit.metrics")
    for name in BUILT_IN:
        registry.register(name, FAMILIES.get(name))
    found = [EntryPoint(name="rows", value="tests.metrics.test_catalog:PLUGIN", group="t2iaudit.metrics")]
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: found if group == "t2iaudit.metrics" else [])
    monkeypatch.setattr(compute, "FAMILIES", registry)
    assert compute.family_names() == [*BUILT_IN, "rows"]
    options = MetricsOptions(families=["rows", "judge_fairness"], metrics=["X1_rows"], bootstrap_resamples=0)
    (value,) = run_families(fairness_table(), options)
    assert (value.metric, value.value, value.params["source"]) == ("X1_rows", 8.0, "a plugin paper")
    with pytest.raises(ValueError, match="unknown metric family 'rowz'; did you mean 'rows'"):
        MetricsOptions(families=["rowz"])
