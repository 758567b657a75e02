"""H1-H6 on hand-built tables with hand-computed values, and the word folding behind H1/H3."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

from t2iaudit.metrics import stats
from t2iaudit.metrics.compute import MetricsOptions
from t2iaudit.metrics.hallucination.captions import added_objects, distribution_bias, score_caption
from t2iaudit.metrics.hallucination.family import hallucination_family
from t2iaudit.metrics.hallucination.wordfold import (
    DATA,
    STOP_WORDS,
    CaptionFolder,
    ShippedLexicon,
    content_words,
    fold_synonyms,
    get_lexicon,
)
from t2iaudit.metrics.table import JudgementTable
from tests.metrics.builders import pick, row, table

SHIPPED = ShippedLexicon.load()
OPTS = MetricsOptions(bootstrap_resamples=200, seed=0)


def partial_table(
    rows: list[dict[str, Any]], label_sets: dict[str, dict[str, list[str]]] | None = None
) -> JudgementTable:
    """A judgement table from partial rows (defaults: one caption judge, prompt "a photo of a doctor")."""
    defaults = {"model_id": "m1", "judge_id": "j1", "attribute": "caption", "label": "text"}
    defaults |= {"prompt_text": "a photo of a doctor", "raw": None}
    full = [row(image_id=f"img{i}", replicate=i, **{**defaults, **r}) for i, r in enumerate(rows)]
    return table(full, label_sets or {})


def opts(**family: Any) -> MetricsOptions:
    shipped = {"hallucination": {"lexicon": "shipped", **family}}
    return MetricsOptions(bootstrap_resamples=200, seed=0, family_options=shipped)


# -- word folding -----------------------------------------------------------------------------


def test_content_words_drop_stop_words_fold_plurals_and_persons():
    assert content_words("A photo of two Women and three children, with Dogs!", SHIPPED) == ["person", "person", "dog"]
    assert content_words("glasses, buses, boxes, ladies, cookies, horses", SHIPPED) == [
        "glasses",
        "bus",
        "box",
        "lady",
        "cookie",
        "horse",
    ]
    assert content_words("men in suits", SHIPPED, person_fold=False) == ["man", "suit"]


def test_synonyms_fold_into_the_prompt_word_both_ways():
    car = score_caption("A picture of a car", "a red automobile on a road", SHIPPED)
    assert car.inputs == {"car"} and car.outputs == {"car", "red", "road"}
    # The list has the group under "doctor" only; the loader makes it symmetric.
    doc = score_caption("a photo of a physician", "a doctor smiling", SHIPPED)
    assert doc.outputs == {"physician", "smiling"}
    assert score_caption("a photo of a doctor", "a physician", SHIPPED).jaccard_hallucination == 0.0
    # Two non-head members of one group ("car": automobile, auto) fold into each other.
    assert score_caption("an automobile", "two autos", SHIPPED).outputs == {"automobile"}
    # A word in two groups ("phone": cellphone, telephone) does not chain them together.
    assert score_caption("a cellphone", "a phone", SHIPPED).outputs == {"cellphone"}
    assert score_caption("a cellphone", "a telephone", SHIPPED).outputs == {"telephone"}


class _Bare:
    """A lexicon whose table lists a pair under one word only."""

    name = "bare"

    def lemma(self, word: str) -> str:
        return word

    def synonyms(self, word: str) -> frozenset[str]:
        return frozenset({"physician"}) if word == "doctor" else frozenset()


def test_fold_synonyms_looks_up_both_directions():
    assert score_caption("physician", "doctor", _Bare()).outputs == {"physician"}
    assert score_caption("doctor", "physician", _Bare()).outputs == {"doctor"}


def test_shipped_list_is_well_formed():
    data = json.loads(DATA.read_text(encoding="utf-8"))
    assert "hand-written" in data["source"]["name"] and "NLTK" in data["source"]["used_when"]
    words = [*data["vocabulary"], *data["synonyms"], *(w for v in data["synonyms"].values() for w in v)]
    words += [w for pair in data["irregular_plurals"].items() for w in pair]
    # Tokens are runs of a-z: anything else (spaces, hyphens, capitals) could never match.
    assert all(re.fullmatch(r"[a-z]{2,}", w) for w in words)
    assert not STOP_WORDS & set(words)
    assert set(data["synonyms"]) | {w for v in data["synonyms"].values() for w in v} <= set(data["vocabulary"])
    assert all(data["synonyms"].values()) and len(data["vocabulary"]) >= 300
    assert len(data["irregular_plurals"]) >= 40 and DATA.stat().st_size < 25_000
    assert {"sofa", "couch"} <= SHIPPED.synonyms("sofa") | {"sofa"} and "tv" in SHIPPED.synonyms("television")
    assert [SHIPPED.lemma(w) for w in ("teeth", "mice", "knives", "shelves", "geese")] == [
        "tooth",
        "mouse",
        "knife",
        "shelf",
        "goose",
    ]


def test_auto_lexicon_falls_back_to_the_shipped_table():
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
    except (ImportError, LookupError):  # nltk is an optional extra; its corpus needs a download
        assert get_lexicon("auto").name == "shipped-handlist"
        with pytest.raises((ImportError, LookupError)):
            get_lexicon.__wrapped__("wordnet")
    else:  # pragma: no cover - only where the corpus is installed
        assert get_lexicon("auto").name == "nltk-wordnet"


def test_h1_scores_of_one_pair():
    s = score_caption("a photo of a doctor", "a doctor in a hospital", SHIPPED)
    assert s.jaccard_hallucination == pytest.approx(0.5) and s.added == pytest.approx(0.5) and s.missing == 0.0
    s = score_caption("a photo of a man", "a woman", SHIPPED)  # both fold to person
    assert s.jaccard_hallucination == 0.0
    s = score_caption("a photo of a nurse", "", SHIPPED)
    assert s.jaccard_hallucination == 1.0 and s.added == 0.0 and s.missing == 1.0
    assert score_caption("a photo", "a picture", SHIPPED).jaccard_hallucination is None


def test_h3_distribution_bias_formula():
    assert distribution_bias([3, 2, 1]) == pytest.approx(1.0)  # [1, .5, 0]: 1.5 - 0.5
    assert distribution_bias([1, 4, 4, 1]) == pytest.approx(1.5)  # [1, 1, 0, 0]: 2 - 0.5
    assert distribution_bias([2, 2, 2]) == pytest.approx(2.0)  # all 1: K - 1
    assert distribution_bias([5]) == 0.0 and distribution_bias([]) == 0.0
    c = np.array([9.0, 5, 4, 4, 1])
    norm = (c - 1) / 8
    assert distribution_bias(c) == pytest.approx(float(np.sum((norm[1:] + norm[:-1]) / 2)))  # trapezoid, dx=1
    # Person words stay distinct objects in H3 (TBYB counts before the person fold).
    assert added_objects("a photo of two people", "a man and a woman", SHIPPED) == {"man", "woman"}


# -- H1 and H3 over a table --------------------------------------------------------------------


def caption_table() -> JudgementTable:
    return partial_table(
        [
            {"raw": "a doctor in a hospital", "prompt_id": "p1"},
            {"raw": "a red automobile", "prompt_text": "a photo of a car", "prompt_id": "p2"},
            {"raw": "a woman", "prompt_text": "a photo of a man", "prompt_id": "p3"},
            {"raw": None, "label": "unknown", "prompt_id": "p1"},
        ],
        {"j1": {"caption": []}},
    )


def test_h1_mean_over_images_with_unknowns_counted():
    values = hallucination_family(caption_table(), opts())
    h1 = pick(values, "H1_hallucination")
    assert h1.value == pytest.approx((0.5 + 0.5 + 0.0) / 3) and h1.n == 3 and h1.n_unknown == 1
    assert h1.ci_low <= h1.value <= h1.ci_high
    assert h1.params["lexicon"] == "shipped-handlist" and h1.params["resamples"] == 200
    assert pick(values, "H1_added").value == pytest.approx(1 / 3)
    assert pick(values, "H1_missing").value == 0.0
    per_prompt = pick(values, "H1_hallucination", prompt_id="p2")
    assert per_prompt.value == 0.5 and per_prompt.n == 1 and per_prompt.ci_low == per_prompt.ci_high == 0.5
    bd = pick(values, "H3_distribution_bias")
    assert bd.value == pytest.approx(2.0) and bd.params["objects"] == 3  # hospital, red, woman: all once
    assert pick(values, "H3_distribution_bias_norm").value == pytest.approx(1.0)


def test_h1_all_unknown_and_missing_prompt_text():
    t = partial_table([{"label": "unknown"}, {"label": "unknown"}], {"j1": {"caption": []}})
    h1 = pick(hallucination_family(t, opts()), "H1_hallucination")
    assert h1.value is None and h1.n == 0 and h1.n_unknown == 2 and h1.ci_low is None
    t.frame = t.frame.drop(columns=["prompt_text"])
    assert not [v for v in hallucination_family(t, opts()) if v.metric.startswith("H1")]


def test_h2_miss_rate():
    t = partial_table([{"attribute": "prompt_match", "label": lab} for lab in ("match", "miss", "miss", "unknown")])
    v = pick(hallucination_family(t, opts()), "H2_miss_rate")
    low, high = stats.wilson_interval(2, 3)
    assert (v.value, v.n, v.n_unknown) == (pytest.approx(2 / 3), 3, 1)
    assert (v.ci_low, v.ci_high) == (pytest.approx(float(low)), pytest.approx(float(high)))


def test_h4_requested_miss_rate_unknown_rate_and_realisation():
    labels = ["female", "male", "nonbinary"]
    rows = [
        {"attribute": "gender", "label": lab, "requested_gender": "female"}
        for lab in ("female", "male", "unknown", "female")
    ]
    rows.append({"attribute": "gender", "label": "male", "requested_gender": None})  # not requested: ignored
    values = hallucination_family(partial_table(rows, {"j1": {"gender": labels}}), opts(per_prompt=False))
    miss = pick(values, "H4_miss_rate")
    assert (miss.value, miss.n, miss.n_unknown, miss.params["requested"]) == (pytest.approx(1 / 3), 3, 1, "female")
    unk = pick(values, "H4_unknown_rate")
    assert (unk.value, unk.n) == (0.25, 4) and unk.params["unknown_in_denominator"] is True
    m = {v.params["label"]: v.value for v in values if v.metric == "H4_realisation"}
    assert m == {"female": pytest.approx(2 / 3), "male": pytest.approx(1 / 3), "nonbinary": 0.0}


def test_h5_person_count_mismatch():
    rows = [
        {"attribute": "person_count", "label": lab, "expected_people": e}
        for lab, e in (("1", 1), ("2", 1), ("0", 1), ("unknown", 1), ("3+", 4), ("2", 2))
    ]
    v = pick(hallucination_family(partial_table(rows), opts()), "H5_count_mismatch")
    assert (v.value, v.n, v.n_unknown) == (pytest.approx(2 / 5), 5, 1)


def test_h6_overcorrection_uses_fixed_meta_column():
    rows = [{"attribute": "gender", "label": lab, "fixed_gender": "male"} for lab in ("male", "female", "female")]
    rows.append({"attribute": "gender", "label": "female", "fixed_gender": None})
    v = pick(hallucination_family(partial_table(rows), opts()), "H6_overcorrection")
    assert (v.value, v.n, v.params["fixed"]) == (pytest.approx(2 / 3), 3, "male")


def test_family_runs_from_run_families():
    from t2iaudit.metrics.compute import run_families

    values = run_families(caption_table(), MetricsOptions(families=["hallucination"], bootstrap_resamples=20))
    assert {"H1_hallucination", "H3_distribution_bias"} <= {v.metric for v in values}


def test_captions_without_content_words_count_with_the_abstentions():
    """The found bug: an image whose prompt and caption have no content word (H1 undefined) was in
    neither n nor n_unknown; now n + n_unknown is every image of the cell."""
    t = partial_table(
        [
            {"raw": "a doctor in a hospital", "prompt_id": "p1"},
            {"raw": "the of and", "prompt_text": "a photo of", "prompt_id": "p2"},
            {"raw": None, "label": "unknown", "prompt_id": "p1"},
        ],
        {"j1": {"caption": []}},
    )
    values = hallucination_family(t, opts())
    h1 = pick(values, "H1_hallucination")
    assert (h1.n, h1.n_unknown, h1.params["n_undefined"]) == (1, 2, 1)
    assert h1.params["unknown_in_denominator"] is False
    for v in values:
        if v.metric.startswith(("H1", "H3")) and "prompt_id" not in v.scope:
            assert v.n + v.n_unknown == 3, v.metric
            assert "unknown_in_denominator" in v.params, v.metric


def test_h1_is_the_mean_over_images_not_over_prompts():
    """p1 has two captions (H1 0.5 and 0.5), p2 one (0.5), p3 one (0.0): the mean over images is
    0.375, the mean over prompt means 0.333 (issue 7, finding 9: the old test could not tell)."""
    data = partial_table(
        [
            {"raw": "a doctor in a hospital", "prompt_id": "p1"},
            {"raw": "a doctor with a stethoscope", "prompt_id": "p1"},
            {"raw": "a red automobile", "prompt_text": "a photo of a car", "prompt_id": "p2"},
            {"raw": "a woman", "prompt_text": "a photo of a man", "prompt_id": "p3"},
        ],
        {"j1": {"caption": []}},
    )
    h1 = pick(hallucination_family(data, opts()), "H1_hallucination")
    assert h1.value == pytest.approx(0.375) and h1.n == 4


def test_vectorised_distribution_bias_matches_the_definition_row_by_row():
    """The bootstrap's B_D of resampled object counts (issue 7, finding 9: a wrong constant in it
    survived the suite)."""
    from t2iaudit.metrics.hallucination.captions import distribution_bias_rows

    rng = np.random.default_rng(0)
    counts = rng.poisson(rng.uniform(0.2, 4.0, 7), size=(300, 7))
    counts[:5] = [[3, 3, 0, 0, 0, 0, 0], [0] * 7, [1, 0, 0, 0, 0, 0, 0], [5, 1, 1, 1, 0, 0, 0], [2, 2, 2, 2, 2, 2, 9]]
    bd, present = distribution_bias_rows(counts)
    for line, got, k in zip(counts, bd, present):
        assert got == pytest.approx(distribution_bias(line[line > 0])) and k == (line > 0).sum()


def test_h3_interval_holds_its_estimate_and_says_coverage_is_not_shown():
    """H3_distribution_bias_norm was reported as 0.056 with interval [0.083, 1.0]."""
    rng = np.random.default_rng(3)
    words = ["tree", "car", "dog", "hat", "lamp", "book", "cup", "chair", "clock", "bird"]
    rows = [
        {
            "raw": "a doctor with a " + " and a ".join(rng.choice(words, 3, p=np.linspace(10, 1, 10) / 55)),
            "prompt_id": f"p{i % 4}",
        }
        for i in range(40)
    ]
    values = hallucination_family(partial_table(rows, {"j1": {"caption": []}}), opts())
    for metric in ("H3_distribution_bias", "H3_distribution_bias_norm"):
        v = pick(values, metric)
        assert v.ci_low <= v.value <= v.ci_high and v.params["coverage"] == "not shown"


def test_caption_folder_gives_what_content_words_and_fold_synonyms_give():
    folder = CaptionFolder(SHIPPED)
    prompt = content_words("a photo of a physician with a cellphone", SHIPPED, person_fold=False)
    for caption in ["two doctors holding phones", "a woman and the men", "A red automobile!", "", "doctors doctors"]:
        for _ in range(2):  # the second pass answers from the memos
            words = folder.words(caption)
            assert words == content_words(caption, SHIPPED, person_fold=False)
            assert folder.fold(prompt, words) == fold_synonyms(prompt, words, SHIPPED)
