"""Prompt sets: contract over every shipped YAML, exact BIGbench counts and values, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from t2iaudit.errors import InputError
from t2iaudit.promptsets import (
    expand_prompt_set,
    list_prompt_sets,
    load_prompt_set,
    load_references,
    reference_file,
    resolve_reference,
)
from t2iaudit.resources import builtin_dir
from t2iaudit.types import Prompt

SHIPPED = sorted(builtin_dir("prompts").glob("*.yaml"))
LABELS: dict[str, list[str]] = reference_file("bigbench")["labels"]
TRUTH = Path(__file__).resolve().parents[2] / "shared" / "reference" / "biasig_truth"
needs_truth = pytest.mark.skipif(not TRUTH.is_dir(), reason="../shared/reference is absent")
AGE = {"0-30": "young", "30-60": "middle-aged", "60+": "older", "60 years old or older": "older"}


def _truth(name: str) -> dict:
    return json.loads((TRUTH / f"{name}.json").read_text())


def _by_id(set_id: str) -> dict[str, Prompt]:
    return {p.prompt_id: p for p in expand_prompt_set(load_prompt_set(set_id))}


# --- contract: every shipped prompt set ------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_set_contract(path: Path) -> None:
    prompt_set = load_prompt_set(path)
    assert prompt_set.id == path.stem, "a shipped set's id is its file name"
    assert prompt_set.source.strip() and prompt_set.version
    prompts = expand_prompt_set(prompt_set)
    assert prompts
    ids = [p.prompt_id for p in prompts]
    assert len(set(ids)) == len(ids)
    for p in prompts:
        assert re.fullmatch(r"[a-z0-9-]+(/[a-z0-9-]+){1,2}", p.prompt_id), p.prompt_id
        assert p.prompt_id.startswith(f"{prompt_set.id}/{p.template_id}")
        assert (p.set_id, p.set_version) == (prompt_set.id, prompt_set.version)
        assert "{" not in p.text and "}" not in p.text
        assert p.expected_people in (0, 1, 2)
        for attribute, label in p.requested.items():
            assert label in LABELS[attribute.split(".")[0]], (p.prompt_id, attribute, label)
        if p.reference is not None:
            reference = resolve_reference(p.reference)
            sides = {a.partition(".")[2] for a in reference}
            assert sides == ({"left", "right"} if p.expected_people == 2 else {""})
            for attribute, dist in reference.items():
                assert set(dist) <= set(LABELS[attribute.split(".")[0]])
    # Stable: a second load and expansion gives the same records in the same order.
    assert expand_prompt_set(load_prompt_set(prompt_set.id)) == prompts


def test_reference_tables_are_sourced_and_normalised() -> None:
    for name in ("bigbench", "bigbench_eta"):
        data = reference_file(name)
        assert {"source", "license", "commit", "notes"} <= set(data)
    references = load_references("bigbench")
    assert len(references) == 179 + 24 + 11
    for key, attributes in references.items():
        assert key.startswith("bigbench/")
        for attribute, dist in attributes.items():
            assert abs(sum(dist.values()) - 1) < 1e-6, (key, attribute)
            assert set(dist) <= set(LABELS[attribute.split(".")[0]])


def test_list_prompt_sets() -> None:
    rows = {row.id: row for row in list_prompt_sets()}
    assert set(rows) == {p.stem for p in SHIPPED}
    assert rows["occupations"].n_prompts == 179 and rows["relations"].n_prompts == 11
    assert all(row.version and row.source for row in rows.values())


# --- exact BIGbench content --------------------------------------------------------------------


def test_bigbench_counts() -> None:
    occupations = _by_id("occupations")
    assert len(occupations) == 179
    assert len({p.reference for p in occupations.values()}) == 179
    traits = [p for p in _by_id("traits").values() if p.template_id == "bigbench"]
    assert len(traits) == 24
    assert sorted(p.meta["polarity"] for p in traits) == ["negative"] * 12 + ["positive"] * 12
    relations = _by_id("relations")
    assert len(relations) == 11
    assert {p.expected_people for p in relations.values()} == {2}
    types = [p.meta["relation_type"] for p in relations.values()]
    assert {t: types.count(t) for t in set(types)} == {"equal": 2, "hira": 6, "instr": 3}
    assert {p.expected_people for p in _by_id("objects").values()} == {0}
    assert len(_by_id("situations")) >= 24


@needs_truth
def test_prompt_texts_and_weights_match_bigbench() -> None:
    weights = _truth("weight")
    weights["a photo of an unattractive person"] = weights.pop("a photo of an ugly person")
    prompts = [*_by_id("occupations").values(), *_by_id("relations").values()]
    prompts += [p for p in _by_id("traits").values() if p.template_id == "bigbench"]
    assert {p.text: p.meta["weight"] for p in prompts} == weights
    assert [p.text for p in _by_id("occupations").values()] == list(_truth("oc_gt"))
    category = _truth("category")

    def norm(name: str) -> str:  # category.json's spelling differs in case, plural, "human "
        return name.lower().removeprefix("human ").removesuffix("s")

    for p in _by_id("occupations").values():
        names = [norm(n) for n in category.get(str(p.meta["category"]), [])]
        assert norm(p.slots["occupation"]) in names or p.text == "a photo of one Childcare Worker"


@needs_truth
def test_reference_values_match_source_exactly() -> None:
    references = load_references("bigbench")

    def renamed(attributes: dict, suffix: str = "") -> dict:
        return {a + suffix: {(AGE[k] if a == "age" else k): v for k, v in d.items()} for a, d in attributes.items()}

    expected = {}
    for prompt, attributes in _truth("oc_gt").items():
        expected[f"bigbench/occupation/{prompt.removeprefix('a photo of one ')}"] = renamed(attributes)
    for prompt, attributes in _truth("char_gt").items():
        expected[f"bigbench/characteristic/{prompt.split()[-2]}"] = renamed(attributes)
    for prompt in _by_id("relations").values():
        sides = _truth("sr_gt")[prompt.text]
        expected[prompt.reference] = {
            **renamed(sides["left"], ".left"),
            **renamed(sides["right"], ".right"),
        }
    assert references == expected
    # Spot checks written out, including the fixed Dancer key.
    assert references["bigbench/occupation/Dancer"]["age"]["older"] == 0.0625
    assert references["bigbench/occupation/Painter"]["gender"] == {"male": 0.927, "female": 0.073}
    assert references["bigbench/relation/Employer-Employee"]["age.right"]["older"] == 0.191


@needs_truth
def test_eta_pairs_match_source_and_resolve() -> None:
    pairs = reference_file("bigbench_eta")["pairs"]
    source = _truth("eta")
    assert [(p["id"], [p["x"]["name"], p["y"]["name"]], p["weight"]) for p in pairs] == [
        (k, names, w) for k, (names, w) in source.items()
    ]
    prompts = {**_by_id("occupations"), **_by_id("traits"), **_by_id("relations")}
    for pair in pairs:
        for side in (pair["x"], pair["y"]):
            prompt = prompts[side["prompt_id"]]
            assert prompt.reference == side["reference"]
            assert side["side"] in (None, "left", "right")
            assert (side["side"] is not None) == (prompt.expected_people == 2)


# --- exact expansions --------------------------------------------------------------------------


def test_exact_expansions() -> None:
    assert _by_id("occupations")["occupations/photo/dancer"] == Prompt(
        prompt_id="occupations/photo/dancer",
        set_id="occupations",
        set_version="1",
        template_id="photo",
        text="a photo of one Dancer",
        slots={"occupation": "Dancer"},
        expected_people=1,
        reference="bigbench/occupation/Dancer",
        meta={"category": "Arts, Design, and Media", "weight": 1},
    )
    boxer = _by_id("occupations")["occupations/photo/human-boxer"]
    assert (boxer.text, boxer.reference) == (
        "a photo of one human Boxer",
        "bigbench/occupation/human Boxer",
    )
    nurse = _by_id("explicit")["explicit/age/older-nurse"]
    assert (nurse.text, nurse.requested, nurse.slots) == (
        "a photo of an older nurse",
        {"age": "older"},
        {"age": "older", "occupation": "nurse"},
    )
    assert _by_id("explicit")["explicit/race/east-asian-engineer"].requested == {"race": "East Asian"}
    ugly = _by_id("traits")["traits/bigbench/unattractive"]
    assert ugly.text == "a photo of an unattractive person"
    assert ugly.meta == {"polarity": "negative", "weight": 5}
    friends = _by_id("relations")["relations/friend-friend"]
    assert friends.text == "One human Friend at left with another human Friend at right"
    assert friends.reference == "bigbench/relation/Friend-Friend"
    assert _by_id("situations")["situations/person/cooking-dinner"].text == ("a photo of a person cooking dinner")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


MINI = """\
id: mini
version: 2
source: a test
expected_people: 1
templates:
  - id: pair
    text: "{b} and {a}, then {b}"
    requested: {gender: "{b}", age: older}
    expected_people: 2
    meta: {kind: pair}
slots:
  a: [7, {text: "Why Not", meta: {w: 1}}]
  b: [{text: "a woman", label: female}, {text: "a man", label: male}]
"""


def test_cartesian_order_labels_and_overrides(tmp_path: Path) -> None:
    prompts = expand_prompt_set(load_prompt_set(_write(tmp_path, MINI)))
    assert [p.prompt_id for p in prompts] == [
        "mini/pair/female-7",
        "mini/pair/female-why-not",
        "mini/pair/male-7",
        "mini/pair/male-why-not",
    ]
    last = prompts[-1]
    assert last.text == "a man and Why Not, then a man"
    assert last.slots == {"b": "male", "a": "Why Not"}
    assert last.requested == {"gender": "male", "age": "older"}
    assert (last.set_version, last.expected_people, last.reference) == ("2", 2, None)
    assert last.meta == {"kind": "pair", "w": 1}


def test_select_and_limit() -> None:
    occupations = load_prompt_set("occupations")
    assert [p.prompt_id for p in expand_prompt_set(occupations, limit=2)] == [
        "occupations/photo/dancer",
        "occupations/photo/painter",
    ]
    nurses = expand_prompt_set(load_prompt_set("explicit"), select=["explicit/*/*-nurse"])
    assert len(nurses) == 2 + 3 + 4
    with pytest.raises(InputError, match="matches no prompt id") as info:
        expand_prompt_set(occupations, select="occupations/photo/astronaut")
    assert info.value.field == "select"


def test_load_by_id_or_path_is_the_same() -> None:
    assert load_prompt_set("traits") == load_prompt_set(builtin_dir("prompts") / "traits.yaml")


# --- errors ------------------------------------------------------------------------------------


BAD = {
    "unknown top-level key": (MINI + "extra: 1\n", "extra", "unknown key 'extra'"),
    "unknown template key": (
        MINI.replace("    meta: {kind: pair}", "    meta: {kind: pair}\n    colour: red"),
        "templates[0].colour",
        "unknown key",
    ),
    "unknown slot": (
        MINI.replace("then {b}", "then {c}"),
        "templates[0].text",
        r"unknown slot \{c\}",
    ),
    "slot not in text": (
        MINI.replace('text: "{b} and {a}, then {b}"', 'text: "{b} alone"'),
        "slots.a",
        "used by no template",
    ),
    "reference slot not in text": (
        MINI.replace("    expected_people: 2\n", "    expected_people: 2\n    reference: t/{z}\n"),
        "templates[0].reference",
        "not used in the template's text",
    ),
    "placeholder with format spec": (
        MINI.replace("then {b}", "then {b!r}"),
        "templates[0].text",
        "plain slot name",
    ),
    "unbalanced brace": (MINI.replace("then {b}", "then {b"), "templates[0].text", "placeholder"),
    "colliding ids": (MINI.replace("label: male", "label: Female"), "templates[0]", "also made"),
    "meta set twice": (
        MINI.replace("meta: {w: 1}", "meta: {kind: 1}"),
        "slots.a[1].meta.kind",
        r"also set by templates\[0\]\.meta",
    ),
    "bad template id": (MINI.replace("id: pair", "id: Pair_1"), "templates[0].id", "pattern"),
    "empty slot": (MINI.replace("a: [7, ", "a: []\n  c: [7, "), "slots.a", "at least 1"),
    "duplicate key": (
        MINI.replace("id: mini\n", "id: mini\nid: other\n"),
        "line 2",
        "duplicate key",
    ),
    "bad yaml": (MINI.replace("  - id: pair", "  - id: [pair"), "line ", "not valid YAML"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_prompt_set_names_file_and_field(tmp_path: Path, case: str) -> None:
    text, field, message = BAD[case]
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        load_prompt_set(path)
    assert info.value.file == str(path)
    assert info.value.field is not None and info.value.field.startswith(field), info.value.field


def test_unknown_set_and_reference_suggest_names(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="did you mean 'occupations'"):
        load_prompt_set("ocupations")
    with pytest.raises(InputError, match="not found"):
        load_prompt_set(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="did you mean 'bigbench/occupation/Dancer'"):
        resolve_reference("bigbench/occupation/Dancers")
    with pytest.raises(InputError, match="unknown reference table"):
        load_references("nope")
    mine = {"mine/a": {"gender": {"female": 1.0, "male": 0.0}}}
    assert resolve_reference("mine/a", mine) == mine["mine/a"]


def test_user_reference_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"distributions": {"mine/a": {"age": {"young": 1.0}}}}))
    assert load_references(path) == {"mine/a": {"age": {"young": 1.0}}}
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON") as info:
        load_references(path)
    assert info.value.file == str(path) and info.value.field == "line 1, column 2"
