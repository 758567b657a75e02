"""The rule-based analyser against the catalogue of expected analyses (tests/data/debias_catalogue.yaml)."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from t2iaudit.debias.analysis import abstain_reasons
from t2iaudit.debias.lexicon import load_lexicon
from t2iaudit.debias.rules import RuleAnalyser
from t2iaudit.debias.vocab import load_vocabulary
from tests.conftest import REPO

CATALOGUE = yaml.safe_load((REPO / "tests" / "data" / "debias_catalogue.yaml").read_text(encoding="utf-8"))
ENTRIES = CATALOGUE["prompts"]


@pytest.fixture(scope="module")
def analyser() -> RuleAnalyser:
    return RuleAnalyser(load_lexicon(), load_vocabulary())


def test_catalogue_covers_every_kind():
    kinds = Counter(e["kind"] for e in ENTRIES)
    assert len(ENTRIES) >= 40
    for kind in ("occupation", "named", "historical", "fictional", "stated", "two-person", "no-person", "non-english"):
        assert kinds[kind] >= 5, kind


def _got(analyser: RuleAnalyser, entry: dict) -> dict:
    a = analyser.analyse(entry["prompt"])
    attributes = entry.get("attributes", CATALOGUE["default_attributes"])
    return {
        "subjects": [
            {"noun": s.noun, "stated": {k: v for k, v in s.stated.items() if k in CATALOGUE["schemes"]}}
            for s in a.subjects
        ],
        "abstain": abstain_reasons(a, attributes),
    }


def _want(entry: dict) -> dict:
    return {
        "subjects": [{"noun": s["noun"], "stated": s.get("stated", {})} for s in entry["subjects"]],
        "abstain": entry.get("abstain", []),
    }


def test_analyser_gets_every_catalogue_entry_right(analyser):
    wrong = {e["prompt"]: (_got(analyser, e), _want(e)) for e in ENTRIES if _got(analyser, e) != _want(e)}
    assert not wrong, "\n".join(f"{p}\n  got  {g}\n  want {w}" for p, (g, w) in wrong.items())


def test_subject_offsets_point_at_the_noun(analyser):
    for entry in ENTRIES:
        for s in analyser.analyse(entry["prompt"]).subjects:
            assert entry["prompt"][s.start : s.end] == s.noun
