"""The spec's ``primary_judges`` and ``report:`` section: validated at load time, naming the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from t2iaudit.errors import InputError
from t2iaudit.report.options import ReportOptions, resolve_options
from t2iaudit.spec import load_spec

SPEC = """\
id: t
prompts: [{set: occupations, limit: 2}]
models: [{id: tiny, model: "tiny:sd15", steps: 2, width: 64, height: 64}]
judges: [face-age-gender, tiny-clip-hf]
"""


def _spec(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC + textwrap.dedent(extra))
    return path


def test_primary_judges_and_report_options_load(tmp_path: Path):
    spec = load_spec(_spec(tmp_path, "primary_judges: {gender: tiny-clip-hf}\nreport: {max_unknown_rate: 0.5}\n"))
    assert spec.primary_judges == {"gender": "tiny-clip-hf"}
    assert spec.report.max_unknown_rate == 0.5 and spec.report.min_kappa == ReportOptions().min_kappa


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ("primary_judges: {gender: clip-gender}\n", "primary_judges.gender", "not one of this spec's judges"),
        ("report: {max_unknown_rate: 2}\n", "report.max_unknown_rate", "less than or equal to 1"),
        ("report: {thumbnails: 3}\n", "report.thumbnails", "unknown key 'thumbnails'; did you mean 'thumbnail_px'?"),
    ],
)
def test_bad_report_settings_name_the_field(tmp_path: Path, extra: str, field: str, message: str):
    path = _spec(tmp_path, extra)
    with pytest.raises(InputError) as e:
        load_spec(path)
    assert e.value.field == field and e.value.file == str(path) and message in e.value.message


def test_flags_override_the_spec_and_bad_values_name_the_flag():
    options = resolve_options({"min_kappa": 0.2, "thumbnails_per_label": 2}, thumbnails_per_label=None, min_kappa=0.5)
    assert (options.min_kappa, options.thumbnails_per_label) == (0.5, 2)
    with pytest.raises(InputError) as e:
        resolve_options({}, max_prompts=0)
    assert e.value.field == "--max-prompts"
