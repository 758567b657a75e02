"""LM analyser and rewriter: validated JSON is used, anything else falls back to the rules or the template."""

from __future__ import annotations

import json

import httpx
import pytest

from t2iaudit.debias.engine import DebiasEngine
from t2iaudit.debias.lm import OpenAIChatLM, TransformersLM
from t2iaudit.debias.lm_analyser import LMAnalyser
from t2iaudit.debias.lm_rewriter import LMRewriter
from t2iaudit.debias.rewriter import RewriteTask
from t2iaudit.debias.schema import PlanRequest


def fake_server(answer) -> httpx.Client:
    """An OpenAI-compatible /chat/completions that answers ``answer(body)``; records the bodies it saw."""
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        content = answer(body)
        if isinstance(content, int):
            return httpx.Response(content, json={"error": "boom"})
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": content}}]})

    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1:9/v1")
    client.seen = seen  # type: ignore[attr-defined]
    return client


def test_valid_lm_analysis_is_used_and_the_request_is_constrained(rules):
    client = fake_server(lambda body: json.dumps({"subjects": [{"noun": "nurse", "stated": {"gender": "female"}}]}))
    lm = LMAnalyser(OpenAIChatLM("http://127.0.0.1:9/v1", "tiny", client=client), rules)
    a = lm.analyse("a photo of a nurse")
    assert a.analyser == "lm:openai:tiny" and a.fallback is None
    assert [(s.noun, s.start, s.stated) for s in a.subjects] == [("nurse", 13, {"gender": "female"})]
    body = client.seen[0]
    assert body["temperature"] == 0 and body["response_format"]["type"] == "json_schema"
    assert "subjects" in body["response_format"]["json_schema"]["schema"]["properties"]


@pytest.mark.parametrize(
    "answer, why",
    [
        (lambda b: "Sure! The subject is a nurse.", "does not validate"),
        (lambda b: json.dumps({"subjects": [{"noun": "surgeon"}]}), "not in the prompt"),
        (
            lambda b: json.dumps({"subjects": [{"noun": "nurse", "stated": {"gender": "diverse"}}]}),
            "not in the vocabulary",
        ),
        (lambda b: json.dumps({"subjects": [], "context": ["MADE_UP"]}), "does not validate"),
        (lambda b: 500, "HTTP 500"),
    ],
)
def test_invalid_lm_analysis_falls_back_to_the_rules(rules, answer, why):
    lm = LMAnalyser(OpenAIChatLM("http://127.0.0.1:9/v1", "tiny", client=fake_server(answer)), rules)
    a = lm.analyse("a photo of a female nurse")
    assert a.fallback and why in a.fallback
    assert a.analyser == "rules" and a.subjects == rules.analyse("a photo of a female nurse").subjects
    resp = DebiasEngine(analyser=lm).plan(PlanRequest(prompt="a photo of a female nurse", n=2, attributes={"age": {}}))
    assert [w.code for w in resp.warnings][:1] == ["LM_ANALYSIS_FALLBACK"]


def test_lm_rewrite_that_fails_the_checks_is_replaced_by_the_template(rules):
    def answer(body):
        text = body["messages"][1]["content"]
        return (
            json.dumps({"prompt": "a smiling young female nurse"})
            if "female" in text
            else json.dumps({"prompt": "a photo of a male nurse"})
        )

    rewriter = LMRewriter(OpenAIChatLM("http://127.0.0.1:9/v1", "tiny", client=fake_server(answer)))
    resp = DebiasEngine(rewriter=rewriter).plan(
        PlanRequest(prompt="a photo of a nurse", n=4, seed=0, attributes={"gender": {}})
    )
    for item in resp.items:
        assert item.prompt == f"a photo of a {item.assignment['gender']} nurse" and item.checks.ok
        if item.assignment["gender"] == "female":
            assert item.checks.replaced and item.checks.rewriter == "template"
            assert item.checks.rejected == "a smiling young female nurse" and item.checks.rejected_violations
        else:
            assert not item.checks.replaced and item.checks.rewriter == "lm:openai:tiny"


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory):
    """A random-weight Llama built from a config (no hub), with a byte-level tokenizer, saved and reloaded."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from t2iaudit.tiny.vlm import byte_level_tokenizer

    folder = tmp_path_factory.mktemp("tiny-causal-lm")
    tok = byte_level_tokenizer(["<pad>", "<s>", "</s>"], pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_tiny_random_causal_lm_answers_garbage_and_the_rules_take_over(rules, tiny_causal_lm):
    lm = TransformersLM(tiny_causal_lm, max_new_tokens=12)
    analyser = LMAnalyser(lm, rules)
    a = analyser.analyse("a photo of a Black nurse")
    assert a.fallback is not None and "transformers:" in a.fallback
    assert [(s.noun, s.stated.get("race")) for s in a.subjects] == [("nurse", "Black")]
    task = RewriteTask("a photo of a nurse", rules.analyse("a photo of a nurse"), {0: ["female"]})
    assert isinstance(LMRewriter(lm).rewrite(task), str)
