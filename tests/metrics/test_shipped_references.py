"""The shipped reference tables as the metrics read them."""

from __future__ import annotations

from pathlib import Path

from t2iaudit import stages
from t2iaudit.promptsets import load_references
from t2iaudit.run.lifecycle import open_run
from t2iaudit.spec import load_spec
from tests.helpers import BALANCED, fake_spec

SET = """\
id: odd-references
version: "1"
source: test fixture
templates:
  - {id: photo, text: "a photo of one {job}", reference: "bigbench/occupation/{job}"}
slots:
  job: [Fashion Designer, Swimmer]
"""


def test_negative_shares_in_the_shipped_table_do_not_crash_the_metrics(tmp_path: Path):
    """The found bug: BIGbench's table (copied exactly) gives Fashion Designer an 'older' share of
    -0.0255 and Swimmer one of -6e-17; any audit judging age on those prompts crashed the metrics
    stage (numpy multinomial: pvals < 0). A share below zero now counts as zero."""
    refs = load_references("bigbench")
    assert refs["bigbench/occupation/Fashion Designer"]["age"]["older"] < 0  # the data is as shipped
    (tmp_path / "odd.yaml").write_text(SET)
    no_older = {"gender": BALANCED["gender"], "age": {"young": 0.5, "middle-aged": 0.5}}  # older: count 0
    spec = load_spec(fake_spec(tmp_path, models={"m": no_older}, replicates=6, prompts=2, judge_device="cpu"))
    spec = spec.model_copy(update={"prompts": [spec.prompts[0].model_copy(update={"set": str(tmp_path / "odd.yaml")})]})
    store = open_run(spec, tmp_path / "run")
    stages.generate_images(store, spec, stages.expand_prompts(spec))
    stages.judge_images(store, spec)
    status = stages.compute_metrics(store, spec)
    assert status.status == "done"
    d9 = [m for m in store.metrics() if m.metric == "D9_tv" and m.attribute == "age" and m.value is not None]
    assert d9 and all(m.ci_low is not None and 0 <= m.ci_low <= m.ci_high <= 1 for m in d9)
