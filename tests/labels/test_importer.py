"""import-labels: CSV/JSONL of labels -> a run directory every metric works on; bad files fail
clearly and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from t2iaudit.cli.labels import register
from t2iaudit.errors import InputError
from t2iaudit.labels.importer import import_labels, load_label_map, merge_maps, parse_map_options
from t2iaudit.metrics.compute import MetricsOptions, run_families
from t2iaudit.metrics.table import load_table
from t2iaudit.run.store import RunStore

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
    assert summary.abstentions == {"gender": {"??": 1}} and summary.empty == {"gender": 1}
    assert summary.label_counts["gender"] == {"female": 2, "male": 1, "unknown": 2}
    store = RunStore(tmp_path / "run")
    prompts = {p.prompt_id: p for p in store.prompts()}
    assert prompts["nurse_f"].requested == {"gender": "female"}  # mapped like the labels
    assert prompts["ceo"].meta == {"category": "business"} and prompts["ceo"].text == "a photo of a CEO"
    assert [im.replicate for im in store.images()] == [0, 1, 0, 1, 0]
    manifest = store.read_manifest()
    assert manifest["judges"]["import:labels.csv"]["attributes"] == {"gender": ["female", "male"]}
    assert manifest["judges"]["import:labels.csv"]["abstentions"] == {"gender": {"??": 1}}
    assert manifest["judges"]["import:labels.csv"]["roles"] == {"gender": "protected"}
    table = load_table(tmp_path / "run")
    assert set(table.frame["label"]) == {"female", "male", "unknown"} and "category" in table.frame
    metrics = run_families(table, MetricsOptions(bootstrap_resamples=20))
    names = {m.metric for m in metrics}
    assert {"share", "D1_mad", "J2_unknown_rate", "H4_miss_rate"} <= names
    share = [
        m for m in metrics if m.metric == "share" and m.scope == {"model_id": "sd15", "judge_id": summary.judge_id}
    ]
    assert share and all(m.n == 3 and m.n_unknown == 1 for m in share)


def test_yaml_map_jsonl_input_and_observed_labels(tmp_path: Path):
    rows = [
        {"image_id": "a", "model_id": "m", "prompt_id": "p", "gender": "W", "ethnicity": "asian", "weight": 2},
        {"image_id": "b", "model_id": "m", "prompt_id": "p", "gender": "man", "ethnicity": "white", "weight": 2},
        {"image_id": "c", "model_id": "m", "prompt_id": "q", "gender": None, "ethnicity": "unknown", "weight": 1.5},
    ]
    f = write(tmp_path / "labels.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    ymap = load_label_map(write(tmp_path / "map.yaml", "gender:\n  w*: female\n  man: male\n"))
    summary = import_labels(f, tmp_path / "run", label_map=merge_maps(parse_map_options(["gender:w=unknown"]), ymap))
    # gender takes its canonical labels (K = 2 whatever is observed); ethnicity is a custom,
    # free-form attribute: its labels are the values observed.
    assert summary.attributes == {"gender": ["female", "male"], "ethnicity": ["asian", "white"]}
    labels = {(j.image_id, j.attribute): j.label for j in RunStore(tmp_path / "run").judgements()}
    assert labels[("a", "gender")] == "unknown"  # --map entries win over the YAML map
    assert summary.abstentions == {"gender": {"W": 1}, "ethnicity": {"unknown": 1}}
    assert labels[("c", "ethnicity")] == "unknown" and labels[("c", "gender")] == "unknown"
    prompts = {p.prompt_id: p for p in RunStore(tmp_path / "run").prompts()}
    assert prompts["q"].meta == {"weight": 1.5}


def test_attribute_option_and_metadata_columns(tmp_path: Path):
    f = write(
        tmp_path / "l.csv",
        "image_id,model_id,prompt_id,hair,annotator_team,expected_people\ni1,m,p,short,a,2\ni2,m,p,long,a,2\n",
    )
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
    metrics = run_families(load_table(tmp_path / "run"), MetricsOptions(bootstrap_resamples=10))
    share = [m for m in metrics if m.metric == "share" and "prompt_id" not in m.scope]
    assert share and all(m.value is None and m.n == 0 and m.n_unknown == 1 for m in share)


BAD = [
    ("l.csv", "", "empty file", None),
    ("l.csv", "image_id,model_id,gender\ni,m,f\n", "missing required column 'prompt_id'", "column prompt_id"),
    ("l.csv", b"image_id,model_id,prompt_id,gender\ni,m,p,f\xe9\n", "not UTF-8", "row 2, column gender"),
    (
        "l.csv",
        "image_id,model_id,prompt_id,gender\ni,m,p,f\ni,m,q,m\n",
        "duplicate image id 'i' (first at row 2)",
        "row 3, column image_id",
    ),
    ("l.csv", "image_id,model_id,prompt_id,gender\ni,m,,f\n", "empty value", "row 2, column prompt_id"),
    (
        "l.csv",
        "image_id,model_id,prompt_id,gender,cat\ni,m,p,f,a\nj,m,p,f,b\n",
        "one value per prompt",
        "row 3, column cat",
    ),
    (
        "l.csv",
        "image_id,model_id,prompt_id,gender,gender\ni,m,p,f,f\n",
        "duplicate column 'gender'",
        "row 1, column gender",
    ),
    ("l.csv", "image_id,model_id,prompt_id,gender\ni,m,p,f,extra\n", "5 cells", "row 2"),
    ("l.csv", "image_id,model_id,prompt_id,gender,seed\ni,m,p,f,x\n", "'x' is not an integer", "row 2, column seed"),
    (
        "l.jsonl",
        '{"image_id": "i", "model_id": "m", "prompt_id": "p", "gender": "f"}\n{oops\n',
        "not valid JSON",
        "line 2",
    ),
    (
        "l.jsonl",
        '{"image_id": "i", "model_id": "m", "prompt_id": "p", "gender": ["f"]}\n',
        "nested values",
        "line 1, column gender",
    ),
]


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
    f = write(tmp_path / "l.csv", "image_id,model_id,prompt_id,gender\ni,m,p,Female\n")
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
    assert "gender: 1 abstentions -> unknown ('??' x1)" in result.stdout
    result = cli.invoke(app, args + ["--json"])
    assert result.exit_code == 2 and "already exists" in result.output
    yaml_map = write(tmp_path / "map.yaml", "gender:\n  f*: female\n")
    result = cli.invoke(
        app, ["import-labels", str(f), "--out", str(tmp_path / "r2"), "--label-map", str(yaml_map), "--json"]
    )
    # "Male" is the canonical label, "??" an abstention; "woman" is no label: the import stops,
    # naming it and the --map that fixes it, and writes nothing.
    assert result.exit_code == 2 and not (tmp_path / "r2").exists()
    assert "'woman' (1 row, first at row 4)" in result.output
    assert "--map 'gender:woman=<female|male|unknown>'" in result.output
    dup = write(tmp_path / "dup.csv", "image_id,model_id,prompt_id,gender\ni,m,p,f\ni,m,p,f\n")
    result = cli.invoke(app, ["import-labels", str(dup), "--out", str(tmp_path / "r3")])
    assert result.exit_code == 2
    assert f"error: {dup}: row 3, column image_id: duplicate image id" in result.output


ABSTAINING = (
    "image_id,model_id,prompt_id,gender\n"
    "a,m,p,female\nb,m,p,Female\nc,m,p,male\nd,m,p,unclear\ne,m,p,n/a\nf,m,p,no person\ng,m,p,Can\u2019t tell\n"
)


def test_abstention_words_are_unknown_and_the_vocabulary_fixes_k(tmp_path: Path):
    """The found bug: without --map, "unclear", "n/a", "no person" became declared classes (K = the
    observed support, n_unknown 0, female share 0.333 instead of 0.667)."""
    f = write(tmp_path / "l.csv", ABSTAINING)
    summary = import_labels(f, tmp_path / "run")
    assert summary.attributes == {"gender": ["female", "male"]}
    assert summary.abstentions == {"gender": {"unclear": 1, "n/a": 1, "no person": 1, "Can\u2019t tell": 1}}
    metrics = run_families(
        load_table(tmp_path / "run"), MetricsOptions(bootstrap_resamples=0, families=["distribution"])
    )
    female = [m for m in metrics if m.metric == "share" and m.params["label"] == "female" and "prompt_id" in m.scope]
    assert (female[0].value, female[0].n, female[0].n_unknown) == (pytest.approx(2 / 3), 3, 4)
    manifest = RunStore(tmp_path / "run").read_manifest()["judges"]["import:l.csv"]
    assert manifest["abstentions"]["gender"]["no person"] == 1


def test_unmapped_values_stop_the_import_and_name_the_fix(tmp_path: Path):
    f = write(tmp_path / "l.csv", "image_id,model_id,prompt_id,gender,hair\ni,m,p,W,long\nj,m,p,nb,short\nk,m,p,W,x\n")
    with pytest.raises(InputError) as err:
        import_labels(f, tmp_path / "run", labels={"hair": ["long", "short"]})
    message = str(err.value)
    assert "'W' (2 rows, first at row 2)" in message and "'nb' (1 row, first at row 3)" in message
    assert "--map 'gender:W=<female|male|unknown>'" in message and "--map 'hair:x=<long|short|unknown>'" in message
    assert err.value.file == str(f) and not (tmp_path / "run").exists()
    # --map raw=unknown marks an abstention; the rest maps to labels.
    fixes = parse_map_options(["gender:W=female", "gender:nb=unknown", "hair:x=unknown"])
    summary = import_labels(f, tmp_path / "run", label_map=fixes, labels={"hair": ["long", "short"]})
    assert summary.label_counts == {
        "gender": {"female": 2, "unknown": 1},
        "hair": {"long": 1, "short": 1, "unknown": 1},
    }
    assert summary.abstentions == {"gender": {"nb": 1}, "hair": {"x": 1}}
    with pytest.raises(InputError, match="canonical vocabulary"):
        import_labels(f, tmp_path / "r2", labels={"gender": ["f", "m"]})
    with pytest.raises(InputError, match="takes its canonical labels"):
        import_labels(f, tmp_path / "r2", label_map=parse_map_options(["gender:nb=nonbinary"]))


def test_canonical_spellings_counts_and_requested_values(tmp_path: Path):
    f = write(
        tmp_path / "l.csv",
        "image_id,model_id,prompt_id,race,person_count,requested_race\n"
        "a,m,p,south asian,none,South Asian\nb,m,p,WHITE,5,South Asian\nc,m,q,East Asian,2,east asian\n",
    )
    summary = import_labels(f, tmp_path / "run")
    assert summary.attributes["race"] == ["White", "East Asian", "Black", "South Asian"]
    assert summary.label_counts["race"] == {"South Asian": 1, "White": 1, "East Asian": 1}
    assert summary.label_counts["person_count"] == {"0": 1, "3+": 1, "2": 1}
    assert {p.prompt_id: p.requested for p in RunStore(tmp_path / "run").prompts()}["q"] == {"race": "East Asian"}
    bad = write(tmp_path / "b.csv", "image_id,model_id,prompt_id,race,requested_race\na,m,p,White,Hispanic\n")
    with pytest.raises(InputError, match="requested value 'Hispanic' is not a label of 'race'") as err:
        import_labels(bad, tmp_path / "r2")
    assert err.value.field == "row 2, column requested_race"


def test_judge_name_lets_compare_pair_two_imports(tmp_path: Path, runner):
    """The found bug: two files labelled by the same annotators got judge ids import:a.csv and
    import:b.csv, so compare never paired them."""
    from t2iaudit.cli import app as full_app

    cli, app = runner
    a = write(
        tmp_path / "a.csv",
        "image_id,model_id,prompt_id,gender\n"
        + "".join(f"a{i},A,p,{'female' if i < 6 else 'male'}\n" for i in range(10)),
    )
    b = write(
        tmp_path / "b.csv",
        "image_id,model_id,prompt_id,gender\n"
        + "".join(f"b{i},B,p,{'female' if i < 2 else 'male'}\n" for i in range(10)),
    )
    for f in (a, b):
        result = cli.invoke(app, ["import-labels", str(f), "--out", str(tmp_path / f.stem), "--judge", "panel-1"])
        assert result.exit_code == 0, result.output
        assert "(judge import:panel-1)" in result.stdout
    result = CliRunner().invoke(
        full_app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--between", "run=a,b", "--attribute", "gender"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    female = next(r for r in rows if r["label"] == "female")
    assert (female["judge_id"], female["count_a"], female["count_b"]) == ("import:panel-1", 6, 2)
    bad = cli.invoke(app, ["import-labels", str(a), "--out", str(tmp_path / "c"), "--judge", "two words"])
    assert bad.exit_code == 2 and "--judge" in bad.output
