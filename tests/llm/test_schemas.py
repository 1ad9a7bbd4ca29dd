"""Every schema critiq sends: OpenAI strict for hosted providers, compiled by xgrammar for vLLM, limits checked here.

The schemas come from one registry (:func:`critiq.llm.structured.reply_schemas`) after importing every critiq
module, so a new reply model is covered without being listed here; the all-in-one replies, made per criteria count
(:func:`critiq.judge.answers.all_in_one_answer`), are made for a few counts first.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

import pytest

import critiq
from critiq.llm.structured import (
    LIMITS,
    Reply,
    reply_schemas,
    response_format,
    sent_schema,
    with_schema_hint,
)
from tests.fakes.answers import schema_in_prompt
from tests.fakes.openai_server import Refusal, check_strict_schema


def _all_reply_schemas() -> list[type[Reply]]:
    for module in pkgutil.walk_packages(critiq.__path__, "critiq."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional dependency (vllm, ray...) is not installed: its module holds no reply
            continue
    from critiq.judge.answers import all_in_one_answer

    for count in (1, 3, 12):  # the all-in-one replies are made per criteria count: a few of them, pairs and points
        for pair in (True, False):
            all_in_one_answer(count, pair)
    return [s for s in reply_schemas() if s.__module__.startswith("critiq.")]


SCHEMAS = _all_reply_schemas()
IDS = [s.__name__ for s in SCHEMAS]


def test_the_registry_holds_the_worker_and_manager_replies() -> None:
    names = set(IDS)
    assert {"PairAnswer", "PointAnswer", "Reason", "Proposal", "Proposals", "Critique"} <= names
    assert {"PairVerdicts3", "PointVerdicts12"} <= names  # all-in-one replies, made per criteria count


def _objects(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += _objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value)
    return found


def _keywords(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in _keywords(value)}
    if isinstance(node, list):
        return {k for value in node for k in _keywords(value)}
    return set()


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_hosted_form_is_openai_strict(schema: type[Reply]) -> None:
    sent = sent_schema(schema, keep_limits=False)
    objects = _objects(sent)
    assert objects, "a reply is an object"
    for node in objects:
        assert node["additionalProperties"] is False
        assert sorted(node["required"]) == sorted(node.get("properties", {}))
    assert not _keywords(sent) & set(LIMITS)  # dropped for providers' strict subsets
    check_strict_schema(sent, schema.__name__)  # and the local OpenAI endpoint accepts it


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_the_pydantic_defaults_would_be_refused(schema: type[Reply]) -> None:
    """What the issue saw: pydantic's own schema lacks additionalProperties:false and is refused."""
    with pytest.raises(Refusal) as refused:
        check_strict_schema(schema.model_json_schema(), schema.__name__)
    assert refused.value.status == 400


def test_worker_text_limits_live_in_the_schema_and_an_over_long_answer_is_cut_not_lost() -> None:
    from critiq.judge.answers import ANALYSIS_CHARS, COMPARISON_CHARS, PairAnswer
    from critiq.llm.structured import parse_reply

    kept = sent_schema(PairAnswer, keep_limits=True)
    assert list(kept["properties"]) == ["analysis_a", "analysis_b", "comparison", "verdict"] == kept["required"]
    assert kept["properties"]["analysis_a"]["maxLength"] == ANALYSIS_CHARS
    assert kept["properties"]["comparison"]["maxLength"] == COMPARISON_CHARS
    assert "maxLength" not in json.dumps(sent_schema(PairAnswer, keep_limits=False))
    # a hosted provider whose strict subset drops the limit may write more: the verdict is kept, the text cut
    long = json.dumps({"analysis_a": "x" * (ANALYSIS_CHARS + 50), "analysis_b": "", "comparison": "", "verdict": "A"})
    parsed = parse_reply(long, PairAnswer)
    assert parsed.verdict == "A" and parsed.analysis_a == "x" * ANALYSIS_CHARS


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_every_schema_compiles_with_xgrammar(schema: type[Reply]) -> None:
    """vLLM's default structured-output backend compiles what the vLLM path sends (limits kept)."""
    xgr = pytest.importorskip("xgrammar")
    sent = json.dumps(sent_schema(schema, keep_limits=True))
    grammar = xgr.Grammar.from_json_schema(sent, strict_mode=True)
    assert "root" in str(grammar)
    vocabulary = [chr(c) for c in range(32, 127)] + ["</s>"]
    compiled = xgr.GrammarCompiler(xgr.TokenizerInfo(vocabulary)).compile_json_schema(sent)
    matcher = xgr.GrammarMatcher(compiled)
    assert not matcher.is_terminated()


def test_the_forms() -> None:
    schema = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    assert response_format("R", schema, "json_schema") == {
        "type": "json_schema",
        "json_schema": {"name": "R", "schema": schema, "strict": True},
    }
    assert response_format("R", schema, "llama_cpp") == {"type": "json_object", "schema": schema}
    assert response_format("R", schema, "json_object") == {"type": "json_object"}
    assert response_format("R", schema, "none") is None


def test_the_schema_hint_goes_into_the_last_user_message() -> None:
    from critiq.judge.answers import PairAnswer

    sent = sent_schema(PairAnswer, keep_limits=False)
    messages = [{"role": "system", "content": "judge"}, {"role": "user", "content": "Text A ... Text B ..."}]
    hinted = with_schema_hint(messages, sent)
    assert hinted[0] == messages[0] and hinted[1]["content"].startswith("Text A ... Text B ...")
    assert "JSON" in hinted[1]["content"]
    assert schema_in_prompt(hinted) == sent
    assert messages[1]["content"] == "Text A ... Text B ..."  # the caller's list is not changed
