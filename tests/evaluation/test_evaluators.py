"""Evaluators on inputs with known answers."""

from __future__ import annotations

import pytest

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.evaluation.evaluators import BUILTIN, Call, resolve


def score(name: str, output, expected=None, **params) -> float | None:
    return BUILTIN[name].score(Call("c", "q", expected, output=output), params)


def test_matching_evaluators():
    assert score("exact_match", "Paris", "Paris") == 1.0
    assert score("exact_match", "paris", "Paris") == 0.0
    assert score("normalized_match", "  Paris!! ", "paris") == 1.0
    assert score("normalized_match", "Café", "cafe") == 1.0
    assert score("exact_match", "Lyon", ["Paris", "Lyon"]) == 1.0  # any acceptable answer
    assert score("contains", "The capital is Paris.", "paris") == 1.0
    assert score("contains", "Paris and Rome", None, value=["paris", "rome"]) == 1.0
    assert score("contains", "Paris", None, value=["paris", "rome"]) == 0.0
    assert score("regex", "order #1234 shipped", None, pattern=r"#\d{4}") == 1.0
    assert score("exact_match", "x") is None  # no expected answer: not applicable, not zero


def test_json_evaluators():
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}
    assert score("json_valid", '{"a": 1}') == 1.0 and score("json_valid", "{a: 1}") == 0.0
    assert score("json_schema", '{"a": 1}', schema=schema) == 1.0
    assert score("json_schema", '{"a": "x"}', schema=schema) == 0.0
    assert score("json_schema", {"a": 2}, schema=schema) == 1.0


def test_numeric_close():
    assert score("numeric_close", "The answer is 42.", "42") == 1.0
    assert score("numeric_close", "It is 1,000.5 in total", 1000.5) == 1.0
    assert score("numeric_close", "41.9", "42", rel_tol=0.01) == 1.0
    assert score("numeric_close", "41.9", "42") == 0.0
    assert score("numeric_close", "no number", "42") == 0.0


def test_overlap_scores_match_hand_computed_values():
    # token F1 (SQuAD): common {the, cat} = 2; precision 2/3, recall 2/4 -> F1 = 4/7
    assert score("token_f1", "the cat sat", "the cat is here") == pytest.approx(4 / 7)
    # ROUGE-L: LCS of (a b c d) and (a c d e) is (a c d) = 3 -> P = R = 3/4
    assert score("rouge_l", "a b c d", "a c d e") == pytest.approx(0.75)
    # Levenshtein: kitten -> sitting is 3 edits over 7 characters
    assert score("levenshtein_similarity", "kitten", "sitting") == pytest.approx(1 - 3 / 7)


def test_toxicity_is_the_share_of_lexicon_words(tmp_path):
    assert score("toxicity", "Thanks, happy to help") == 0.0
    assert score("toxicity", "you are an idiot") == pytest.approx(0.25)
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("# mine\nbanana\n")
    assert score("toxicity", "banana split", lexicon=str(lexicon)) == 0.5


def test_failed_call_scores_zero_on_quality_but_is_measured_on_performance():
    call = Call("c", "q", "Paris", output=None, latency_ms=12.0, error_type="TimeoutError")
    assert BUILTIN["exact_match"].score(call, {}) == 0.0
    assert BUILTIN["error"].score(call, {}) == 1.0 and BUILTIN["latency_ms"].score(call, {}) == 12.0
    assert BUILTIN["tokens"].score(call, {}) is None  # no usage reported: unknown, not zero
    assert BUILTIN["latency_ms"].passed(12.0, 10.0) is False  # lower is better


def test_user_evaluator_by_dotted_path_and_unknown_names():
    evaluator = resolve("shouty", "tests.evaluation.custom_evaluators:shouty")
    assert evaluator.score(Call("c", "q", output="HELLO"), {}) == 1.0
    with pytest.raises(UserError, match="unknown evaluator 'exactmatch'.*built-in: .*exact_match"):
        resolve("exactmatch")
    with pytest.raises(UserError, match="cannot import 'nowhere'"):
        resolve("x", "nowhere:fn")
