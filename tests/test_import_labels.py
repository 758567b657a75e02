"""import-labels: CSV/JSONL of labels -> a run directory every metric works on; bad files fail
clearly and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from t2iaudit.cli_labels import register
from t2iaudit.errors import InputError
from t2iaudit.labels_import import import_labels, load_label_map, merge_maps, parse_map_options
from t2iaudit.metrics.compute import MetricsOptions, compute_metrics
from t2iaudit.metrics.table import load_table
from t2iaudit.store import RunStore

CSV = (
    "\ufeffmodel_id,prompt_id,image_id,gender,category,prompt_text,requested_gender\n"
    "sd15,nurse,sd15/nurse/0,F,health,a photo of a nurse,\n"
    "sd15,nurse,sd15/nurse/1,Male,health,a photo of a nurse,\n"
    "sd15,ceo,sd15/ceo/0,woman,business,a photo of a CEO,\n"
    "sd15,ceo,sd15/ceo/1,??,business,a photo of a CEO,\n"
    "sdxl/base,nurse_f,x/1,,health,a photo of a female nurse,f\n"
)
GENDER_MAP = ["gender:f*=female", "gender:m*=male", "gender:woman=female"]


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.fixture()
def runner() -> tuple[CliRunner, typer.Typer]:
    app = typer.Typer()
    register(app)
    return CliRunner(), app


def test_import_builds_a_run_that_metrics_read(tmp_path: Path):
    f = write(tmp_path / "labels.csv", CSV)
    summary = import_labels(f, tmp_path / "run", label_map=parse_map_options(GENDER_MAP))
    assert (summary.images, summary.prompts, summary.models) == (5, 3, ["sd15", "sdxl/base"])
    assert summary.judge_id == "import:labels.csv" and summary.attributes == {"gender": ["female", "male"]}
    assert summary.unmapped == {"gender": {"??": 1}} and summary.empty == {"gender": 1}
    assert summary.label_counts["gender"] == {"female": 2, "male": 1, "unknown": 2}
    store = RunStore(tmp_path / "run")
    prompts = {p.prompt_id: p for p in store.prompts()}
    assert prompts["nurse_f"].requested == {"gender": "female"}  # mapped like the labels
    assert prompts["ceo"].meta == {"category": "business"} and prompts["ceo"].text == "a photo of a CEO"
    assert [im.replicate for im in store.images()] == [0, 1, 0, 1, 0]
    manifest = store.read_manifest()
    assert manifest["judges"]["import:labels.csv"]["attributes"] == {"gender": ["female", "male"]}
    assert manifest["judges"]["import:labels.csv"]["unmapped"] == {"gender": {"??": 1}}
    table = load_table(tmp_path / "run")
    assert set(table.frame["label"]) == {"female", "male", "unknown"} and "category" in table.frame
    metrics = compute_metrics(table, MetricsOptions(bootstrap_resamples=20))
    names = {m.metric for m in metrics}
    assert {"share", "D1_mad", "J2_unknown_rate", "H4_miss_rate"} <= names
    share = [
        m for m in metrics if m.metric == "share" and m.scope == {"model_id": "sd15", "judge_id": summary.judge_id}
    ]
    assert share and all(m.n == 3 and m.n_unknown == 1 for m in share)


def test_yaml_map_jsonl_input_and_observed_labels(tmp_path: Path):
    rows = [
        {"image_id": "a", "model_id": "m", "prompt_id": "p", "gender": "W", "race": "asian", "weight": 2},
        {"image_id": "b", "model_id": "m", "prompt_id": "p", "gender": "man", "race": "white", "weight": 2},
        {"image_id": "c", "model_id": "m", "prompt_id": "q", "gender": None, "race": "unknown", "weight": 1.5},
    ]
    f = write(tmp_path / "labels.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    ymap = load_label_map(write(tmp_path / "map.yaml", "gender:\n  w*: female\n  man: male\n"))
    summary = import_labels(f, tmp_path / "run", label_map=merge_maps(parse_map_options(["gender:w=nonbinary"]), ymap))
    assert summary.attributes == {"gender": ["nonbinary", "female", "male"], "race": ["asian", "white"]}
    labels = {(j.image_id, j.attribute): j.label for j in RunStore(tmp_path / "run").judgements()}
    assert labels[("a", "gender")] == "nonbinary"  # --map entries win over the YAML map
    assert labels[("c", "race")] == "unknown" and labels[("c", "gender")] == "unknown"
    prompts = {p.prompt_id: p for p in RunStore(tmp_path / "run").prompts()}
    assert prompts["q"].meta == {"weight": 1.5}


def test_attribute_option_and_metadata_columns(tmp_path: Path):
    f = write(tmp_path / "l.csv", "image_id,model_id,prompt_id,hair,annotator_team,expected_people\n"
                                  "i1,m,p,short,a,2\ni2,m,p,long,a,2\n")  # fmt: skip
    with pytest.raises(InputError, match="no attribute column: name them with --attribute"):
        import_labels(f, tmp_path / "run")
    summary = import_labels(f, tmp_path / "run", attributes=["hair"])
    assert summary.attributes == {"hair": ["long", "short"]}  # observed values, no map
    prompt = RunStore(tmp_path / "run").prompts()[0]
    assert prompt.meta == {"annotator_team": "a"} and prompt.expected_people == 2


def test_single_image_all_unknown(tmp_path: Path):
    f = write(tmp_path / "l.csv", "image_id,model_id,prompt_id,gender\ni1,m,p,???\n")
    summary = import_labels(f, tmp_path / "run", label_map=parse_map_options(["gender:f*=female", "gender:m*=male"]))
    assert summary.label_counts == {"gender": {"unknown": 1}} and summary.attributes["gender"] == ["female", "male"]
    metrics = compute_metrics(load_table(tmp_path / "run"), MetricsOptions(bootstrap_resamples=10))
    share = [m for m in metrics if m.metric == "share" and "prompt_id" not in m.scope]
    assert share and all(m.value is None and m.n == 0 and m.n_unknown == 1 for m in share)


BAD = [
    ("l.csv", "", "empty file", None),
    ("l.csv", "image_id,model_id,gender\ni,m,f\n", "missing required column 'prompt_id'", "column prompt_id"),
    ("l.csv", b"image_id,model_id,prompt_id,gender\ni,m,p,f\xe9\n", "not UTF-8", "row 2, column gender"),
    ("l.csv", "image_id,model_id,prompt_id,gender\ni,m,p,f\ni,m,q,m\n", "duplicate image id 'i' (first at row 2)",
     "row 3, column image_id"),
    ("l.csv", "image_id,model_id,prompt_id,gender\ni,m,,f\n", "empty value", "row 2, column prompt_id"),
    ("l.csv", "image_id,model_id,prompt_id,gender,cat\ni,m,p,f,a\nj,m,p,f,b\n", "one value per prompt",
     "row 3, column cat"),
    ("l.csv", "image_id,model_id,prompt_id,gender,gender\ni,m,p,f,f\n", "duplicate column 'gender'",
     "row 1, column gender"),
    ("l.csv", "image_id,model_id,prompt_id,gender\ni,m,p,f,extra\n", "5 cells", "row 2"),
    ("l.csv", "image_id,model_id,prompt_id,gender,seed\ni,m,p,f,x\n", "'x' is not an integer", "row 2, column seed"),
    ("l.jsonl", '{"image_id": "i", "model_id": "m", "prompt_id": "p", "gender": "f"}\n{oops\n', "not valid JSON",
     "line 2"),
    ("l.jsonl", '{"image_id": "i", "model_id": "m", "prompt_id": "p", "gender": ["f"]}\n', "nested values",
     "line 1, column gender"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "message", "field"), BAD)
def test_malformed_files_fail_and_write_nothing(tmp_path: Path, name: str, content, message: str, field):
    f = write(tmp_path / name, content)
    with pytest.raises(InputError) as err:
        import_labels(f, tmp_path / "run")
    assert message in str(err.value) and err.value.file == str(f) and err.value.field == field
    assert not (tmp_path / "run").exists()
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary folder left behind


def test_map_syntax_missing_map_column_and_existing_run(tmp_path: Path):
    with pytest.raises(InputError, match="attribute:raw=label"):
        parse_map_options(["gender=female"])
    f = write(tmp_path / "l.csv", "image_id,model_id,prompt_id,gender\ni,m,p,f\n")
    with pytest.raises(InputError, match="names attribute 'race'"):
        import_labels(f, tmp_path / "run", label_map=parse_map_options(["race:w*=white"]))
    import_labels(f, tmp_path / "run")
    with pytest.raises(InputError, match="already exists"):
        import_labels(f, tmp_path / "run")
    (tmp_path / "empty").mkdir()
    import_labels(f, tmp_path / "empty")  # an empty folder may be used
    assert (tmp_path / "empty" / "manifest.json").exists()


def test_cli_import_labels(tmp_path: Path, runner):
    cli, app = runner
    f = write(tmp_path / "labels.csv", CSV)
    args = ["import-labels", str(f), "--out", str(tmp_path / "run")]
    result = cli.invoke(app, args + sum((["--map", m] for m in GENDER_MAP), []))
    assert result.exit_code == 0, result.output
    assert "imported 5 images, 3 prompts" in result.stdout
    assert "gender: 1 unmapped values -> unknown ('??' x1)" in result.stdout
    result = cli.invoke(app, args + ["--json"])
    assert result.exit_code == 2 and "already exists" in result.output
    yaml_map = write(tmp_path / "map.yaml", "gender:\n  f*: female\n")
    result = cli.invoke(app, ["import-labels", str(f), "--out", str(tmp_path / "r2"), "--label-map", str(yaml_map),
                              "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["unmapped"]["gender"] == {"Male": 1, "woman": 1, "??": 1}
    dup = write(tmp_path / "dup.csv", "image_id,model_id,prompt_id,gender\ni,m,p,f\ni,m,p,f\n")
    result = cli.invoke(app, ["import-labels", str(dup), "--out", str(tmp_path / "r3")])
    assert result.exit_code == 2
    assert f"error: {dup}: row 3, column image_id: duplicate image id" in result.output
