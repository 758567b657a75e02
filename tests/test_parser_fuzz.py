"""Fuzzing the spec and prompt-set parsers: whatever the file holds, the answer is a value or an
``InputError`` (never another exception). Examples are derandomised, so the suite is stable.

Inputs are valid files mutated (keys dropped, values replaced by arbitrary YAML values, keys
added), arbitrary YAML documents, and arbitrary text and bytes.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t2iaudit.errors import InputError
from t2iaudit.promptsets import expand_prompt_set, load_prompt_set
from t2iaudit.spec import load_spec
from tests.helpers import FAKE_JUDGE

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
"""Modest and deterministic: the suite stays fast and a failure reproduces."""

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", ".", "..", "/", "~", "tiny:sd15", "fake", "occupations", "{x}", "a/b", "0", "-1"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4)
    ),
    max_leaves=12,
)

SPEC: dict[str, Any] = {
    "id": "fuzz",
    "seed": 0,
    "replicates": 2,
    "prompts": [{"set": "occupations", "limit": 2, "templates": ["photo"]}],
    "models": [
        {"id": "m", "generator": "fake", "labels": {"gender": {"female": 0.5, "male": 0.5}}, "batch_size": 2},
        {"id": "d", "model": "tiny:sd15", "steps": 2, "width": 64, "height": 64, "scheduler": "DDIMScheduler"},
    ],
    "judges": [str(FAKE_JUDGE)],
    "judge_batch_size": 4,
    "metrics": {"bootstrap_resamples": 50},
    "primary_judges": {"gender": "fake-judge"},
    "report": {"max_unknown_rate": 0.5},
}
PROMPT_SET: dict[str, Any] = {
    "id": "fuzzed",
    "version": "1",
    "source": "test",
    "expected_people": 1,
    "templates": [
        {"id": "photo", "text": "a photo of {article} {job}", "requested": {"gender": "{article}"}},
        {"id": "plain", "text": "a {job}", "reference": "bigbench/occupation/{job}", "meta": {"k": 1}},
    ],
    "slots": {"job": ["Dancer", {"text": "nurse", "label": "Nurse", "meta": {"w": 2}}], "article": ["a", "the"]},
}


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a nested dict/list (the places a mutation can hit)."""
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """``base`` with one to three mutations: a value replaced, a key deleted or a key added."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        if not path:
            data = draw(VALUES) if draw(st.integers(0, 9)) == 0 else data
            continue
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
        if not isinstance(data, dict):
            break
    return data


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


DOCUMENTS = st.one_of(
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    st.binary(max_size=200),
    VALUES.map(lambda v: _dump(v).encode("utf-8")),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _only_input_errors(call: Any) -> None:
    try:
        call()
    except InputError as e:
        assert str(e) and "\n" not in e.message, repr(e)  # one line


@FUZZ
@given(data=st.one_of(mutated(SPEC), DOCUMENTS))
def test_load_spec_raises_only_input_errors(folder: Path, data: Any):
    path = folder / "spec.yaml"
    path.write_bytes(data if isinstance(data, bytes) else _dump(data).encode("utf-8"))
    _only_input_errors(lambda: load_spec(path))


@FUZZ
@given(data=st.one_of(mutated(PROMPT_SET), DOCUMENTS))
def test_load_prompt_set_raises_only_input_errors(folder: Path, data: Any):
    path = folder / "set.yaml"
    path.write_bytes(data if isinstance(data, bytes) else _dump(data).encode("utf-8"))
    _only_input_errors(lambda: expand_prompt_set(load_prompt_set(path)))


def test_the_files_the_fuzzer_mutates_are_valid(folder: Path):
    """Mutations start from valid files, so they reach the checks deep inside (a field)."""
    path = folder / "valid.yaml"
    path.write_text(_dump(SPEC))
    assert [m.id for m in load_spec(path).models] == ["m", "d"]
    path.write_text(_dump(PROMPT_SET))
    assert len(expand_prompt_set(load_prompt_set(path))) == 6  # 2 jobs x 2 articles + 2 jobs
    broken = copy.deepcopy(SPEC)
    broken["models"][1]["steps"] = "many"
    path.write_text(_dump(broken))
    with pytest.raises(InputError) as e:
        load_spec(path)
    assert e.value.field == "models[1].steps"
