"""One vocabulary per attribute: canonical labels, roles, scheme mappings, and what load_spec refuses."""

from __future__ import annotations

import json
import logging
import math
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from t2iaudit.errors import InputError
from t2iaudit.judges.loader import load_judge_config
from t2iaudit.metrics.table import JudgementTable, label_counts
from t2iaudit.promptsets import expand_prompt_set, list_prompt_sets, load_prompt_set, resolve_reference
from t2iaudit.spec import load_spec
from t2iaudit.types import ImageRecord, Judgement
from t2iaudit.vocabulary import (
    RACE,
    RACE_FAIRFACE,
    VOCABULARIES,
    base_attribute,
    canonical_labels,
    default_role,
    resolve_attributes,
)

# -- the vocabulary and the shipped data ------------------------------------------------------


def test_shipped_prompt_sets_and_references_use_the_canonical_vocabularies() -> None:
    for info in list_prompt_sets():
        for p in expand_prompt_set(load_prompt_set(info.id)):
            for attribute, value in p.requested.items():
                assert value in (canonical_labels(attribute) or ()), (p.prompt_id, attribute, value)
            for attribute, dist in (resolve_reference(p.reference) if p.reference else {}).items():
                assert set(dist) <= set(canonical_labels(attribute) or ()), (p.prompt_id, attribute)
    assert "South Asian" in RACE and "Indian" in RACE_FAIRFACE and "Indian" not in RACE


def test_roles_come_from_the_vocabulary_and_suffixes_keep_them() -> None:
    assert [default_role(a) for a in ("gender", "race_fairface", "skin_tone")] == ["protected"] * 3
    assert [default_role(a) for a in ("person", "prompt_match", "person_count", "caption")] == [
        "gate",
        "check",
        "count",
        "caption",
    ]
    assert default_role("gender.left") == "protected" and base_attribute("race.right") == ("race", ".right")
    assert default_role("hair", ["short", "long"]) == "protected"  # a user's own scheme
    assert default_role("score", ["value"]) == "check" and default_role("notes", []) == "caption"
    assert {v.role for v in VOCABULARIES.values()} == {"protected", "gate", "check", "count", "caption"}


def test_fairface_judge_declares_its_own_scheme_and_the_mapping_to_bigbench_race() -> None:
    config = load_judge_config("clip-race-fairface")
    declared = config.declared_labels()
    assert declared["race_fairface"] == list(RACE_FAIRFACE) and "race" not in declared
    info = config.attribute_info().manifest()
    assert info["roles"] == {"person": "gate", "race_fairface": "protected"}
    mapping = info["maps_to"]["race_fairface"]
    assert mapping["to"] == "race"
    assert mapping["labels"] == {
        "White": "White",
        "Black": "Black",
        "East Asian": "East Asian",
        "Indian": "South Asian",
    }
    assert sorted(mapping["exclude"]) == ["Latino_Hispanic", "Middle Eastern", "Southeast Asian"]


@pytest.mark.parametrize("name", ["clip-race", "face-age-gender", "mllm-openai", "tiny-caption", "clip-prompt-checks"])
def test_declared_labels_without_loading_weights(name: str) -> None:
    config = load_judge_config(name)
    declared = config.declared_labels()
    roles = config.attribute_info().roles
    assert set(roles) == set(declared) and declared
    for attribute, labels in declared.items():
        assert set(labels) <= set(canonical_labels(attribute) or labels)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


RACE_JUDGE = """\
id: race-mine
kind: clip
model: tiny:clip-hf
attributes:
  race:
    labels:
      White: [a White person]
      Indian: [an Indian person]
      Black: [a Black person]
      East Asian: [an East Asian person]
"""


def test_a_judge_whose_labels_differ_must_declare_a_mapping(tmp_path: Path) -> None:
    plain = _write(tmp_path, "race-mine.yaml", RACE_JUDGE)
    with pytest.raises(InputError, match=r"\['Indian'\] are not in its canonical vocabulary") as err:
        load_judge_config(plain)
    assert err.value.file == str(plain)
    mapped = _write(tmp_path, "race-mapped.yaml", RACE_JUDGE + "maps_to:\n  race: {labels: {Indian: South Asian}}\n")
    info = load_judge_config(mapped).attribute_info()
    assert info.maps_to["race"].labels["Indian"] == "South Asian" and info.maps_to["race"].reachable() == list(RACE)
    half = _write(
        tmp_path,
        "race-half.yaml",
        RACE_JUDGE.replace("  race:", "  ethnicity:") + "maps_to:\n"
        "  ethnicity: {to: race, labels: {Indian: South Asian}, exclude: [Black]}\n",
    )
    info = load_judge_config(half).attribute_info()
    assert info.maps_to["ethnicity"].excluded == ("Black",) and info.roles["ethnicity"] == "protected"
    with pytest.raises(ValueError, match=r"labels \['Other'\] have no counterpart in 'race'"):
        labels = ["White", "Indian", "Black", "East Asian", "Other"]
        resolve_attributes({"ethnicity": labels}, maps_to={"ethnicity": info.maps_to["ethnicity"]})
    with pytest.raises(InputError, match="roles.gender"):
        load_judge_config(_write(tmp_path, "r.yaml", RACE_JUDGE + "roles: {gender: check}\n"))
    checks = _write(
        tmp_path,
        "c.yaml",
        RACE_JUDGE.replace("race:", "has_glasses:").replace("Indian", "x") + "roles: {has_glasses: check}\n",
    )
    assert load_judge_config(checks).attribute_info().roles == {"has_glasses": "check"}


# -- load_spec: refuse what no judge can give, warn about what no judge answers ---------------

SPEC = """\
id: v
prompts:
  - set: explicit
    templates: [race]
models:
  - {id: m, model: "tiny:sd15", steps: 2, width: 64, height: 64}
judges: [JUDGE]
"""


def test_load_spec_refuses_a_requested_value_a_judge_can_neither_output_nor_map(tmp_path: Path) -> None:
    three = RACE_JUDGE.replace("      Indian: [an Indian person]\n", "")
    _write(tmp_path, "race-three.yaml", three)
    spec = _write(tmp_path, "spec.yaml", SPEC.replace("JUDGE", "race-three.yaml"))
    with pytest.raises(InputError) as err:
        load_spec(spec)
    message = str(err.value)
    assert err.value.file == str(spec) and err.value.field == "judges[0]"
    assert all(x in message for x in ("'explicit'", "race 'South Asian'", "'race-mine'", "can neither output nor map"))
    # The same labels plus a declared mapping (Indian -> South Asian): accepted.
    _write(tmp_path, "race-mapped.yaml", RACE_JUDGE + "maps_to:\n  race: {labels: {Indian: South Asian}}\n")
    assert load_spec(_write(tmp_path, "ok.yaml", SPEC.replace("JUDGE", "race-mapped.yaml"))).judges
    # The FairFace judge answers race through the declared scheme mapping.
    assert load_spec(_write(tmp_path, "ff.yaml", SPEC.replace("JUDGE", "clip-race-fairface"))).judges


def test_cli_refusal_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from t2iaudit.cli import app

    _write(tmp_path, "race-three.yaml", RACE_JUDGE.replace("      Indian: [an Indian person]\n", ""))
    spec = _write(tmp_path, "spec.yaml", SPEC.replace("JUDGE", "race-three.yaml"))
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "South Asian" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_no_judge_for_a_requested_attribute_warns_and_the_manifest_records_it(tmp_path: Path, caplog) -> None:
    from t2iaudit.run.lifecycle import open_run

    spec_path = _write(tmp_path, "spec.yaml", SPEC.replace("JUDGE", "face-age-gender"))  # the README's case
    with caplog.at_level(logging.WARNING, logger="t2iaudit"):
        spec = load_spec(spec_path)
    assert any("no judge answers race" in r.getMessage() and "explicit" in r.getMessage() for r in caplog.records)
    store = open_run(spec, tmp_path / "run")
    recorded = store.read_manifest()["not_computed"]
    assert recorded["race"]["requested_by"] == ["explicit"] and "H4_miss_rate" in recorded["race"]["metrics"]


# -- metrics see mapped labels: H4, D5, D6, D9 against the prompt reference --------------------

PROBE = """\
id: probe
version: "1"
source: test fixture
templates:
  - id: ceo
    text: "a photo of one CEO"
    reference: "bigbench/occupation/CEO"
  - id: race
    text: "a photo of a {race} doctor"
    requested: {race: "{race}"}
slots:
  race:
    - {text: "South Asian", label: South Asian}
"""
PROBE_SPEC = """\
id: probe
replicates: 10
prompts: [{set: probe.yaml}]
models:
  - {id: m, model: "tiny:sd15", steps: 2, width: 64, height: 64}
judges: [clip-race-fairface]
metrics: {bootstrap_resamples: 20}
"""


class FakeJudge:
    """Labels every image as ``label_of(attribute, prompt_id, replicate)`` says (no model)."""

    def __init__(self, config: Any, label_of: Any) -> None:
        self.judge_id = config.judge_id()
        self.revision = "fake"
        self.attributes = {a: list(s.labels) for a, s in config.attributes.items()}
        self.label_of = label_of

    def judge(self, items: list) -> list[Judgement]:
        out = []
        for item in items:
            replicate = int(item.image_id.rsplit("/", 1)[1])
            for attribute, labels in self.attributes.items():
                label = self.label_of(attribute, item.prompt.prompt_id, replicate)
                scores = {x: float(x == label) for x in labels}
                out.append(
                    Judgement(
                        image_id=item.image_id, judge_id=self.judge_id, attribute=attribute, label=label, scores=scores
                    )
                )
        return out


def judged_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec_text: str, label_of: Any) -> Path:
    """A run directory made by the real judge and metrics stages, with a fake judge behind them."""
    import t2iaudit.judges.loader as loader
    from t2iaudit import stages
    from t2iaudit.run.lifecycle import open_run

    spec = load_spec(_write(tmp_path, "spec.yaml", spec_text))
    prompts = stages.expand_prompts(spec)
    store = open_run(spec, tmp_path / "run")
    store.write_prompts(prompts)
    rel, sha = store.save_image(Image.new("RGB", (8, 8), (120, 90, 60)))
    store.append_images(
        ImageRecord(
            image_id=f"m/{p.prompt_id}/{r}",
            model_id="m",
            prompt_id=p.prompt_id,
            replicate=r,
            seed=r,
            path=rel,
            sha256=sha,
            width=8,
            height=8,
        )
        for p in prompts
        for r in range(spec.replicates)
    )
    monkeypatch.setattr(loader, "build_judge", lambda config, context: FakeJudge(config, label_of))
    stages.judge_images(store, spec)
    stages.compute_metrics(store, spec)
    return store.root


def _metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _one(metrics: list[dict], metric: str, attribute: str, **scope: str) -> dict:
    found = [
        m
        for m in metrics
        if m["metric"] == metric
        and m["attribute"] == attribute
        and all(m["scope"].get(k) == v for k, v in scope.items())
        and ("prompt_id" in scope or "prompt_id" not in m["scope"])
    ]
    assert len(found) >= 1, (metric, attribute, scope)
    return found[0]


def test_fairface_labels_are_mapped_for_h4_d5_d6_and_d9(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The found bugs: 9 of 10 images judged "Indian" for "South Asian" gave H4 = 1.0; D9 against
    the CEO reference renormalised the missing key away (TV 0.60 instead of 0.70); D5 was None."""
    (tmp_path / "probe.yaml").write_text(PROBE)

    def label_of(attribute: str, prompt_id: str, replicate: int) -> str:
        if attribute == "person":
            return "yes"
        return "White" if prompt_id.endswith("ceo") or replicate == 0 else "Indian"

    metrics = _metrics(judged_run(tmp_path, monkeypatch, PROBE_SPEC, label_of))
    h4 = _one(metrics, "H4_miss_rate", "race")
    assert (h4["value"], h4["n"], h4["n_unknown"]) == (pytest.approx(0.1), 10, 0)
    tv = [
        m
        for m in metrics
        if m["metric"] == "D9_tv"
        and m["attribute"] == "race"
        and m["scope"].get("prompt_id") == "probe/ceo"
        and m["params"].get("reference") == "prompt"
    ][0]
    assert tv["value"] == pytest.approx(0.70)  # all White against White 0.30 of BIGbench's four groups
    r = [0.3, 0.27, 0.18, 0.25]
    d5 = _one(metrics, "D5_bigbench_implicit", "race")
    assert d5["value"] == pytest.approx((1 + 0.3 / math.sqrt(sum(x * x for x in r))) / 2)
    d6 = _one(metrics, "D6_bigbench_explicit", "race")
    assert d6["value"] == pytest.approx(0.9)
    # The FairFace attribute is measured too, in its own scheme (no reference applies to it).
    assert _one(metrics, "share", "race_fairface")["params"]["label"] in RACE_FAIRFACE
    assert not [m for m in metrics if m["attribute"] == "race_fairface" and m["params"].get("reference") == "prompt"]


def test_excluded_groups_are_counted_and_reported_never_unknown(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "probe.yaml").write_text(PROBE)

    def label_of(attribute: str, prompt_id: str, replicate: int) -> str:
        if attribute == "person":
            return "yes"
        if prompt_id.endswith("ceo"):
            return "Middle Eastern" if replicate < 4 else "White"
        return {0: "White", 1: "Latino_Hispanic", 2: "unknown"}.get(replicate, "Indian")

    run = judged_run(tmp_path, monkeypatch, PROBE_SPEC, label_of)
    metrics = _metrics(run)
    h4 = _one(metrics, "H4_miss_rate", "race")
    # 9 judged (7 Indian, 1 White, 1 Latino_Hispanic: excluded from race, but judged and not South Asian)
    assert (h4["n"], h4["n_unknown"], h4["params"]["n_excluded"]) == (9, 1, 1)
    assert h4["value"] == pytest.approx(2 / 9)
    assert _one(metrics, "D6_bigbench_explicit", "race")["value"] == pytest.approx(7 / 9)
    rate = _one(metrics, "J2_excluded_rate", "race")
    assert (rate["value"], rate["n"]) == (pytest.approx(5 / 20), 20)
    assert rate["params"]["labels"] == {"Latino_Hispanic": 1, "Middle Eastern": 4}
    share = [
        m
        for m in metrics
        if m["metric"] == "share" and m["attribute"] == "race" and m["scope"].get("prompt_id") == "probe/ceo"
    ]
    assert {m["params"]["label"]: m["value"] for m in share}["White"] == 1.0  # over BIGbench's groups
    assert all(m["n"] == 6 and m["n_unknown"] == 0 for m in share)  # excluded: not unknown
    manifest = json.loads((run / "manifest.json").read_text())
    (entry,) = manifest["judges"].values()
    assert entry["roles"]["race_fairface"] == "protected" and entry["maps_to"]["race_fairface"]["to"] == "race"


# -- roles in the table -----------------------------------------------------------------------


def test_distribution_counts_cover_protected_attributes_only() -> None:
    rows = [
        {"image_id": f"i{k}", "model_id": "m", "prompt_id": "p", "judge_id": "j", "attribute": a, "label": lab}
        for k in range(3)
        for a, lab in (("gender", "female"), ("person", "yes"), ("prompt_match", "miss"), ("hair", "long"))
    ]
    sets = {
        "j": {
            "gender": ["female", "male"],
            "person": ["yes", "no"],
            "prompt_match": ["match", "miss"],
            "hair": ["long", "short"],
        }
    }
    table = JudgementTable(pd.DataFrame(rows), sets)  # no recorded roles: inferred from the names
    assert table.roles["j"] == {"gender": "protected", "person": "gate", "prompt_match": "check", "hair": "protected"}
    counted = {g.attribute for g in label_counts(table.frame, table.label_sets, roles=table.roles)}
    assert counted == {"gender", "hair"}
    table = JudgementTable(pd.DataFrame(rows), sets, roles={"j": {"hair": "check"}})  # a YAML's explicit role
    assert {g.attribute for g in label_counts(table.frame, table.label_sets, roles=table.roles)} == {"gender"}
