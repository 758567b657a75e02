"""The rewriter's own bias: unplanned attribute words a (fake) LM rewriter adds, counted per class."""

from __future__ import annotations

import pytest

from t2iaudit.debias.lm_rewriter import LMRewriter
from t2iaudit.debias.rewriter import RewriteTask, TemplateRewriter
from t2iaudit.debias.schema import PlanRequest
from t2iaudit.debias.textaudit import audit_rewriters, class_mentions, unplanned_additions


class BiasedLM:
    """A fake LM rewriter's model: adds the planned phrase, plus "young" for women and "his" for men."""

    name = "biased"

    def complete(self, system, user, schema=None):
        import json

        prompt = user.split("\n")[0].removeprefix("Prompt: ")
        phrase = user.split("insert '")[1].split("'")[0]
        extra = "young " if "female" in phrase else ""
        tail = " at his desk" if phrase.endswith("male") and "female" not in phrase else ""
        return json.dumps({"prompt": prompt.replace("a nurse", f"a {extra}{phrase} nurse") + tail})


def test_class_mentions_count_words_and_pronouns(vocab):
    m = class_mentions(vocab, "an elderly Black woman and her son, in a white coat")
    assert m[("age", "older")] == 1 and m[("race", "Black")] == 1 and m[("race", "White")] == 1
    assert m[("gender", "female")] == 1  # "her"; "woman" is a noun, counted by the analyser, not here


def test_unplanned_additions_leave_out_what_was_planned_or_already_there(rules, vocab):
    task = RewriteTask("a young nurse", rules.analyse("a young nurse"), {0: ["female"]})
    assert unplanned_additions(vocab, task, "a young female nurse") == set()
    assert unplanned_additions(vocab, task, "a young Black female nurse") == {
        ("race", "Black"),
        ("race_fairface", "Black"),
    }


def test_audit_counts_each_rewriters_unplanned_words_per_class(engine, vocab):
    tasks = engine.tasks(PlanRequest(prompt="a photo of a nurse", n=20, seed=3, attributes={"gender": {}}))
    assert len(tasks) == 20
    records = audit_rewriters([TemplateRewriter(), LMRewriter(BiasedLM())], tasks, vocab)
    table = {(r.rewriter, r.attribute, r.label): r for r in records}
    assert len(records) == 2 * sum(len(c) for c in vocab.classes.values())
    assert all(r.added == 0 for r in records if r.rewriter == "template")
    young = table[("lm:biased", "age", "young")]
    assert (young.n, young.added, young.rate) == (20, 10, 0.5)
    assert young.ci_low < 0.5 < young.ci_high and young.examples[0] == "a photo of a young female nurse"
    his = table[("lm:biased", "gender", "male")]
    assert his.added == 0  # "his" marks male, and male was planned for those items
    assert table[("lm:biased", "gender", "female")].added == 0
    assert sum(r.added for r in records if r.rewriter == "lm:biased") == 10


def test_engine_replaces_the_biased_rewrites_and_records_it(vocab):
    from t2iaudit.debias.engine import DebiasEngine

    resp = DebiasEngine(rewriter=LMRewriter(BiasedLM())).plan(
        PlanRequest(prompt="a photo of a nurse", n=4, seed=0, attributes={"gender": {}})
    )
    replaced = [it for it in resp.items if it.checks.replaced]
    assert len(replaced) == 4  # "young" for women, "at his desk" for men: both fail the insert-only rule
    assert all(it.prompt == f"a photo of a {it.assignment['gender']} nurse" for it in resp.items)


@pytest.mark.parametrize("prompt", ["a red car", "Albert Einstein"])
def test_no_tasks_for_prompts_left_alone(engine, prompt):
    assert engine.tasks(PlanRequest(prompt=prompt, n=3, attributes={"gender": {}})) == []
