"""The judgement table's compact columns: read record by record, and no metric changes with them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from t2iaudit.metrics.columns import (
    IMAGE_COLUMNS,
    RECORD_COLUMNS,
    compact,
    derive_columns,
    image_columns,
    judgement_columns,
    plain,
)
from t2iaudit.metrics.compute import MetricsOptions, run_families
from t2iaudit.metrics.table import load_table
from t2iaudit.run.store import RunStore
from t2iaudit.vocabulary import RACE_FAIRFACE

GENDER, AGE = ["female", "male"], ["young", "middle-aged", "older"]
RACE = ["White", "East Asian", "Black", "South Asian"]
JUDGES: dict[str, dict[str, list[str]]] = {
    "clip@1#a": {"gender": GENDER, "race": RACE, "age": AGE, "prompt_match": ["match", "miss"], "clipscore": ["value"]},
    "mllm@1#b": {"gender": GENDER, "race": RACE, "age": AGE},
    "fair@1#c": {"race_fairface": list(RACE_FAIRFACE)},  # mapped onto race by the vocabulary's scheme mapping
    "self@1#d": {"race": ["White", "Black", "East Asian", "Indian", "Other"]},  # relabelled in place
    "face@1#e": {"person_count": ["0", "1", "2", "3+"]},
    "cap@1#f": {"caption": []},
}
SELF_MAP = {
    "to": "race",
    "labels": {"White": "White", "Black": "Black", "East Asian": "East Asian", "Indian": "South Asian"},
}


def _prompts() -> list[dict[str, Any]]:
    from t2iaudit.promptsets import load_references

    keys = sorted(load_references("bigbench"))
    out: list[dict[str, Any]] = []
    for i in range(10):
        meta: dict[str, Any] = {"weight": float(1 + i % 3)} if i % 2 else {}
        if i == 3:
            meta["fixed_gender"] = "female"
        job = f"job{i}"
        out.append(
            {
                "prompt_id": f"occ/photo/{job}",
                "set_id": "occ",
                "template_id": "photo",
                "text": f"a photo of a {job}",
                "slots": {"occupation": job},
                "expected_people": 1 if i % 4 else 2,
                "reference": keys[i] if i % 3 == 0 else None,
                "meta": meta,
            }
        )
    for template, jobs in (("gendered", ["job0", "job1", "job2"]), ("portrait", [None])):
        for job in jobs:
            for g in GENDER:
                slots = {"gender": g, **({"occupation": job} if job else {})}  # portrait: no occupation slot
                out.append(
                    {
                        "prompt_id": f"occ/{template}/{g}-{job}",
                        "set_id": "occ",
                        "template_id": template,
                        "text": f"a {template} of a {g} {job or 'person'}",
                        "slots": slots,
                        "expected_people": 1,
                        "requested": {"gender": g},
                    }
                )
    return out


def _judgements(image_id: str, prompt: dict[str, Any], rng: np.random.Generator) -> list[dict[str, Any]]:
    out = []

    def add(judge: str, attribute: str, label: str, scores: Any = None, raw: Any = None) -> None:
        record = {"image_id": image_id, "judge_id": judge, "attribute": attribute, "label": label}
        out.append({**record, "scores": scores or {}, "raw": raw})

    def pick(labels: list[str], unknown: float = 0.1) -> str:
        return "unknown" if rng.random() < unknown else str(labels[rng.integers(len(labels))])

    for judge in ("clip@1#a", "mllm@1#b"):
        asked = (prompt.get("requested") or {}).get("gender")
        add(judge, "gender", asked if asked and rng.random() < 0.7 else pick(GENDER))
        add(judge, "race", pick(RACE))
        if judge == "mllm@1#b" and rng.random() < 0.1:  # a failed answer
            add(judge, "age", "unknown", raw={"error": "timeout"})
        else:
            add(judge, "age", pick(AGE))
    add("clip@1#a", "prompt_match", pick(["match", "miss"], 0.05))
    add("clip@1#a", "clipscore", "value", {"value": float(rng.uniform(0.2, 1.0))})
    if rng.random() < 0.1:  # asked again later: the second record supersedes the first
        add("fair@1#c", "race_fairface", "unknown", raw={"error": "not_json"})
    add("fair@1#c", "race_fairface", pick(list(RACE_FAIRFACE)))
    add("self@1#d", "race", pick(JUDGES["self@1#d"]["race"]))
    add("face@1#e", "person_count", pick(["0", "1", "2", "3+"]))
    words = prompt["text"].split()[-1:] + [str(rng.choice(["dog", "car", "tree", "laptop", "man", "woman"]))]
    add("cap@1#f", "caption", "text", raw=f"a {words[0]} with a {words[1]} in a room")
    return out


def _write_run(root: Path, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    prompts = _prompts()
    images, judgements = [], []
    for model in ("m1", "m2"):
        for p in prompts:
            for k in range(6):
                image_id = f"{model}/{p['prompt_id']}/{k}"
                images.append({"image_id": image_id, "model_id": model, "prompt_id": p["prompt_id"], "replicate": k})
                images[-1]["nsfw_flag"] = k == 5 and p["template_id"] == "photo" and model == "m2"
                judgements += _judgements(image_id, p, rng)
    judges = {jid: {"name": jid.split("@")[0], "version": "1", "attributes": attrs} for jid, attrs in JUDGES.items()}
    judges["self@1#d"]["maps_to"] = {"race": {**SELF_MAP, "exclude": ["Other"]}}
    store = RunStore(root)
    store.write_manifest({"format_version": 2, "run_id": root.name, "judges": judges, "status": "done"})
    for name, records in (("prompts.jsonl", prompts), ("images.jsonl", images), ("judgements.jsonl", judgements)):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_categorical_columns_give_every_family_the_same_values(tmp_path: Path) -> None:
    _write_run(tmp_path / "run")
    table = load_table(tmp_path / "run")
    frame = table.frame
    for column in ("image_id", "model_id", "prompt_id", "judge_id", "attribute", "label", "slot_occupation"):
        assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
        assert list(frame[column].cat.categories) == sorted(frame[column].dropna().unique()), column
    assert "scores" not in frame.columns and frame["value"].notna().sum() > 0
    strings = plain(frame)
    assert not any(isinstance(t, pd.CategoricalDtype) for t in strings.dtypes)
    assert frame.memory_usage(deep=True).sum() < strings.memory_usage(deep=True).sum() / 2

    options = MetricsOptions(bootstrap_resamples=20)
    compact_values = [v.model_dump_json() for v in run_families(table, options)]
    string_values = [v.model_dump_json() for v in run_families(dataclasses.replace(table, frame=strings), options)]
    assert compact_values == string_values
    metrics = {json.loads(v)["metric"].split("_")[0] for v in compact_values}
    # Every family ran on this run: distribution, BIGbench, hallucination, judge validity, J4.
    assert {"share", "D1", "D5", "D6", "H1", "H2", "H3", "H4", "H5", "H6", "J1", "J2", "J4"} <= metrics
    kinds = {(json.loads(v)["metric"], json.loads(v)["params"].get("error")) for v in compact_values}
    assert {("J2_failure_rate", "timeout"), ("J2_failure_rate", "nsfw_blacked_out")} <= kinds
    assert any(json.loads(v)["metric"] == "J2_excluded_rate" for v in compact_values)


RECORDS = [
    {"image_id": "i1", "judge_id": "j", "attribute": "gender", "label": "male", "scores": {"male": 0.9}, "raw": None},
    {"image_id": "i1", "judge_id": "j", "attribute": "score", "label": "value", "scores": {"value": 0.5}},  # no raw
    {"image_id": "i2", "judge_id": "j", "attribute": "gender", "label": "unknown", "raw": {"error": "timeout"}},
    {"image_id": "i2", "judge_id": "j", "attribute": "gender", "label": "female", "scores": {}, "raw": {}},  # retried
    {"image_id": "i1", "judge_id": "c", "attribute": "caption", "label": "text", "scores": {}, "raw": "a dog"},
    {"image_id": "i2", "judge_id": "c", "attribute": "caption", "label": "text", "scores": {}},
    {"image_id": "i3", "judge_id": "j", "attribute": "gender", "label": None, "scores": {}, "raw": None},
]


@pytest.mark.parametrize("records", [RECORDS, [*RECORDS, {**RECORDS[0], "image_id": "i4", "label": 3}], []])
def test_records_read_one_at_a_time_give_the_columns_of_a_data_frame(records: list[dict[str, Any]]) -> None:
    free_text = {("c", "caption")}
    streamed = judgement_columns(iter(records), free_text)
    framed = derive_columns(pd.DataFrame(records, columns=list(RECORD_COLUMNS)), free_text)
    pd.testing.assert_frame_equal(compact(streamed), compact(framed.reset_index(drop=True)))
    if records:
        assert streamed["image_id"].tolist()[:3] == ["i1", "i1", "i2"]  # the retried i2 record supersedes
        assert streamed["error"].tolist()[:3] == [None, None, None] and streamed["raw"].tolist()[3] == "a dog"


def test_image_records_read_one_at_a_time_give_the_columns_of_a_data_frame() -> None:
    images = [
        {"image_id": "i1", "model_id": "m", "prompt_id": "p", "replicate": 0, "nsfw_flag": None, "seed": 1},
        {"image_id": "i2", "model_id": "m", "prompt_id": "q", "replicate": 1, "nsfw_flag": True},
        {"image_id": "i3", "model_id": "n", "prompt_id": "p", "replicate": 2},
    ]
    streamed = image_columns(iter(images))
    framed = pd.DataFrame(images, columns=list(IMAGE_COLUMNS))
    pd.testing.assert_frame_equal(compact(streamed), compact(framed))
    assert isinstance(streamed["image_id"].dtype, pd.CategoricalDtype)


def test_compact_sorts_and_trims_categories_it_did_not_make() -> None:
    frame = pd.DataFrame({"label": pd.Categorical(["b", "a"], categories=["z", "b", "a"]), "other": ["x", "y"]})
    out = compact(frame)
    assert list(out["label"].cat.categories) == ["a", "b"] and out["label"].tolist() == ["b", "a"]
    assert isinstance(frame["label"].dtype, pd.CategoricalDtype) and list(frame["label"].cat.categories) == [
        "z",
        "b",
        "a",
    ]
    assert not isinstance(out["other"].dtype, pd.CategoricalDtype)  # not an id, label or prompt field
