"""Fuzzing label files: whatever a CSV, TSV or JSONL file of labels holds, ``read_rows`` and
``import_labels`` answer with rows or a run directory, or an ``InputError`` naming the file;
never another exception, and a refused import writes nothing. Derandomised examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t2iaudit.errors import InputError
from t2iaudit.labels.files import read_rows
from t2iaudit.labels.importer import import_labels

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
REQUIRED = ["image_id", "model_id", "prompt_id"]
TYPICAL = {
    "image_id": "a b c d a/1 x.png",
    "model_id": "m n sd-1.5",
    "prompt_id": "p q occupations/photo/nurse",
    "gender": "female male F Female unclear n/a",
    "age": "young middle-aged older unknown",
    "race": "White Black unclear",
    "replicate": "0 1 2",
    "seed": "1 7 1000",
    "prompt_text": "a_nurse a_photo",
    "expected_people": "0 1 2",
    "reference": "bigbench/occupation/Nurse",
    "image_path": "a.png b/c.png",
    "requested_gender": "female male",
    "slot_job": "nurse pilot",
    "fixed_gender": "female 1 0.5",
}
"""Valid values of each column (underscores are spaces), so most files get into the values."""
ODD = "'' -1 1.5 x 1e3 ../x /etc/passwd ~/.ssh/id_rsa robot 0-30 East-Asian nan true".split()
"""Values that are wrong somewhere: mixed in by the noisy files."""
COLUMNS = st.sampled_from([*TYPICAL, "", " x "])
CELLS = st.one_of(st.sampled_from(["", *ODD]), st.text(max_size=8))


def cells_of(column: str) -> st.SearchStrategy[str]:
    return st.sampled_from([v.replace("_", " ") for v in TYPICAL.get(column, "a").split()])


def odd_cell(draw: st.DrawFn, noisy: bool) -> str | None:
    """In a noisy file, one cell in eight is odd (None: keep the valid value)."""
    if not noisy or draw(st.integers(0, 7)):
        return None
    value = draw(st.one_of(st.sampled_from(ODD), CELLS))
    return "" if value == "''" else value


@st.composite
def _extra_columns(draw: st.DrawFn) -> list[str]:
    """An attribute column and up to four optional ones."""
    attribute = draw(st.sampled_from(["gender", "age", "race"]))
    rest = [c for c in list(TYPICAL)[3:] if c != attribute]
    return [attribute, *draw(st.lists(st.sampled_from(rest), max_size=4, unique=True))]


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Mostly well-formed tables (so the values are what is fuzzed), sometimes a broken one."""
    header = draw(st.permutations(REQUIRED + draw(_extra_columns())))
    if draw(st.integers(0, 7)) == 0:  # a broken header: a column missing, empty or repeated
        header = draw(st.lists(COLUMNS, min_size=1, max_size=6))
    rows = []
    noisy = draw(st.booleans())
    for _ in range(draw(st.integers(0, 6))):
        row = [odd if (odd := odd_cell(draw, noisy)) is not None else draw(cells_of(c)) for c in header]
        if noisy and draw(st.integers(0, 9)) == 0:  # a ragged row
            row = row[:-1] if draw(st.booleans()) else [*row, draw(CELLS)]
        rows.append(row)
    quote = draw(st.booleans())

    def cell(text: str) -> str:
        return '"' + text.replace('"', '""') + '"' if quote or "," in text or "\n" in text or '"' in text else text

    lines = [",".join(cell(c) for c in header)] + [",".join(cell(c) for c in row) for row in rows]
    return ("\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))).encode("utf-8")


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), CELLS, st.lists(st.integers(), max_size=2)
)


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    lines = []
    extra = draw(_extra_columns())
    noisy = draw(st.booleans())
    for _ in range(draw(st.integers(0, 5))):
        obj: dict[str, Any] = {}
        for key in REQUIRED + extra:
            odd = noisy and draw(st.integers(0, 7)) == 0
            obj[key] = draw(JSON_VALUES if odd else cells_of(key))
        if draw(st.integers(0, 5)) == 0:
            obj.pop(draw(st.sampled_from(list(obj))))
        line = json.dumps(obj)
        if noisy and draw(st.integers(0, 7)) == 0:
            line = line[: draw(st.integers(0, len(line)))]  # a damaged line
        lines.append(line)
    return "\n".join(lines).encode("utf-8")


FILES = st.one_of(
    csv_files().map(lambda b: ("labels.csv", b)),
    csv_files().map(lambda b: ("labels.csv", b)),
    csv_files().map(lambda b: ("labels.tsv", b.replace(b",", b"\t"))),
    jsonl_files().map(lambda b: ("labels.jsonl", b)),
    st.binary(max_size=120).map(lambda b: ("labels.csv", b)),
    st.text(max_size=120).map(lambda t: ("labels.txt", t.encode("utf-8"))),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("labels-fuzz")


@FUZZ
@given(named=FILES)
def test_label_files_give_rows_a_run_or_an_input_error(folder: Path, named: tuple[str, bytes]):
    name, data = named
    for old in folder.iterdir():
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    file = folder / name
    file.write_bytes(data)
    try:
        read_rows(file)
    except InputError as e:
        assert e.file == str(file) and "\n" not in e.message
    out = folder / "run"
    try:
        summary: Any = import_labels(file, out)
    except InputError as e:
        assert "\n" not in str(e).split(": ", 1)[-1].split(". Map each")[0]  # one line
        assert not out.exists()  # nothing written
    else:
        assert summary.images == len((out / "images.jsonl").read_text().splitlines())


def test_a_file_the_fuzzer_can_make_imports(folder: Path):
    """The strategies reach a successful import, not only the first check."""
    file = folder / "ok.csv"
    file.write_text("image_id,model_id,prompt_id,gender,image_path\na,m,p,F,a.png\nb,m,p,unclear,\n")
    from t2iaudit.labels.importer import parse_map_options

    summary = import_labels(file, folder / "ok-run", label_map=parse_map_options(["gender:f=female"]))
    assert summary.images == 2 and summary.abstentions == {"gender": {"unclear": 1}}
