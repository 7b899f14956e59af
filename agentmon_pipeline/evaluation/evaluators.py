"""Evaluators: a score per benchmark call, named for what they compute.

An evaluator is a function `(call: Call, **params) -> float | None`. Quality evaluators score the
output against the case (higher is better, usually in [0, 1]); performance evaluators report a
measure of the call (`latency_ms`, `error`, `tokens`, `cost_usd`: lower is better). A case passes
an evaluator when its score is at least the threshold (at most, for lower-is-better measures).
`None` means "not applicable" (e.g. `cost_usd` when the agent reported none) and is left out of
the statistics, never counted as zero.

Users add their own by dotted path (`module:function` or `module.function`) in a suite.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from agentmon_pipeline.errors import UserError

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class Call:
    """One benchmark call: the case, what the agent answered, and how the call went."""

    case_id: str
    input: Any
    expected: Any = None
    output: Any = None
    latency_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error_type is not None


@dataclass(frozen=True)
class Evaluator:
    name: str
    fn: Callable[..., float | None]
    higher_is_better: bool = True
    default_threshold: float | None = None
    # a quality evaluator scores a failed call 0; a performance one measures it as it is
    quality: bool = True
    # scores only 0 or 1 (a pass rate); None: decided from the scores (users' evaluators)
    binary: bool | None = None

    def score(self, call: Call, params: dict[str, Any]) -> float | None:
        if self.quality and call.failed:
            return 0.0
        value = self.fn(call, **params)
        return None if value is None else float(value)

    def passed(self, score: float | None, threshold: float | None) -> bool | None:
        if score is None or threshold is None:
            return None
        return score >= threshold if self.higher_is_better else score <= threshold


# --- text helpers -------------------------------------------------------------------------


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Lower case, accents folded, punctuation dropped, whitespace collapsed."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(folded.lower().translate(_PUNCT).split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def _expected_list(expected: Any) -> list[Any]:
    """A case may list several acceptable answers; the best-scoring one counts."""
    return expected if isinstance(expected, list) and expected else [expected]


def _best(call: Call, fn: Callable[[str, str], float]) -> float | None:
    if call.expected is None:
        return None
    out = as_text(call.output)
    return max(fn(out, as_text(e)) for e in _expected_list(call.expected))


# --- quality ------------------------------------------------------------------------------


def exact_match(call: Call) -> float | None:
    return _best(call, lambda out, exp: float(out.strip() == exp.strip()))


def normalized_match(call: Call) -> float | None:
    return _best(call, lambda out, exp: float(normalize(out) == normalize(exp)))


def contains(call: Call, value: str | list[str] | None = None, case_sensitive: bool = False) -> float | None:
    """1 when the output contains the expected text (or every one of `value`, when given)."""
    needles = [value] if isinstance(value, str) else value
    out = as_text(call.output)
    if not case_sensitive:
        out = out.lower()
    if needles is None:
        return _best(call, lambda o, e: float((e if case_sensitive else e.lower()) in out))
    found = [(n if case_sensitive else n.lower()) in out for n in needles]
    return float(all(found))


def regex(call: Call, pattern: str | None = None) -> float | None:
    """1 when the pattern (or the expected text as a pattern) is found in the output."""
    pattern = pattern if pattern is not None else call.expected
    if pattern is None:
        return None
    return float(re.search(str(pattern), as_text(call.output)) is not None)


def _parsed_json(output: Any) -> tuple[bool, Any]:
    if isinstance(output, dict | list):
        return True, output
    try:
        return True, json.loads(as_text(output))
    except ValueError:
        return False, None


def json_valid(call: Call) -> float:
    return float(_parsed_json(call.output)[0])


def json_schema(call: Call, schema: dict | None = None) -> float:
    """1 when the output is JSON that validates against `schema` (or the case's expected schema)."""
    import jsonschema

    schema = schema if schema is not None else call.metadata.get("schema")
    if schema is None:
        raise UserError("json_schema: give `schema` in the suite or `metadata.schema` in the case")
    ok, value = _parsed_json(call.output)
    if not ok:
        return 0.0
    return float(jsonschema.Draft202012Validator(schema).is_valid(value))


_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def _first_number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _NUMBER.search(as_text(value))
    if not match:
        return None
    try:
        return float(match.group().replace(",", ""))
    except ValueError:
        return None


def numeric_close(call: Call, rel_tol: float = 1e-6, abs_tol: float = 0.0) -> float | None:
    """1 when the first number in the output is close to the expected number."""
    if call.expected is None:
        return None
    expected = _first_number(call.expected)
    got = _first_number(call.output)
    if expected is None:
        return None
    return float(got is not None and math.isclose(got, expected, rel_tol=rel_tol, abs_tol=abs_tol))


def _f_measure(overlap: int, n_got: int, n_want: int) -> float:
    """Harmonic mean of precision (overlap / n_got) and recall (overlap / n_want)."""
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_got, overlap / n_want
    return 2 * precision * recall / (precision + recall)


def _f1(out: str, exp: str) -> float:
    got, want = tokens(out), tokens(exp)
    if not got and not want:
        return 1.0
    return _f_measure(sum((Counter(got) & Counter(want)).values()), len(got), len(want))


def token_f1(call: Call) -> float | None:
    """SQuAD's token F1 over normalized tokens."""
    return _best(call, _f1)


def _lcs(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def _rouge_l(out: str, exp: str) -> float:
    got, want = tokens(out), tokens(exp)
    if not got or not want:
        return float(got == want)
    return _f_measure(_lcs(got, want), len(got), len(want))


def rouge_l(call: Call) -> float | None:
    """ROUGE-L F-measure: longest common subsequence of tokens."""
    return _best(call, _rouge_l)


def _levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def levenshtein_similarity(call: Call) -> float | None:
    """1 - edit distance / length of the longer text."""

    def similarity(out: str, exp: str) -> float:
        longest = max(len(out), len(exp))
        return 1.0 if longest == 0 else 1 - _levenshtein(out, exp) / longest

    return _best(call, similarity)


@cache
def _toxic_lexicon(path: str) -> frozenset[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return frozenset(normalize(w) for w in lines if w.strip() and not w.lstrip().startswith("#"))


def toxicity(call: Call, lexicon: str | None = None) -> float:
    """Share of the output's tokens found in a keyword lexicon (0 is clean). A blunt instrument by
    design: it catches slurs and abuse, not subtle toxicity; the lexicon is a plain data file."""
    words = _toxic_lexicon(str(Path(lexicon) if lexicon else DATA_DIR / "toxicity_lexicon.txt"))
    toks = tokens(as_text(call.output))
    return 0.0 if not toks else sum(t in words for t in toks) / len(toks)


# --- performance --------------------------------------------------------------------------


def latency_ms(call: Call) -> float | None:
    return call.latency_ms


def error(call: Call) -> float:
    return float(call.failed)


def tokens_used(call: Call) -> float | None:
    if call.input_tokens is None and call.output_tokens is None:
        return None
    return float((call.input_tokens or 0) + (call.output_tokens or 0))


def cost_usd(call: Call) -> float | None:
    return call.cost_usd


BUILTIN: dict[str, Evaluator] = {
    e.name: e
    for e in [
        Evaluator("exact_match", exact_match, default_threshold=1.0, binary=True),
        Evaluator("normalized_match", normalized_match, default_threshold=1.0, binary=True),
        Evaluator("contains", contains, default_threshold=1.0, binary=True),
        Evaluator("regex", regex, default_threshold=1.0, binary=True),
        Evaluator("json_valid", json_valid, default_threshold=1.0, binary=True),
        Evaluator("json_schema", json_schema, default_threshold=1.0, binary=True),
        Evaluator("numeric_close", numeric_close, default_threshold=1.0, binary=True),
        Evaluator("token_f1", token_f1, default_threshold=0.5, binary=False),
        Evaluator("rouge_l", rouge_l, default_threshold=0.5, binary=False),
        Evaluator("levenshtein_similarity", levenshtein_similarity, default_threshold=0.8, binary=False),
        Evaluator("toxicity", toxicity, higher_is_better=False, default_threshold=0.0, binary=False),
        Evaluator("latency_ms", latency_ms, higher_is_better=False, quality=False, binary=False),
        Evaluator("error", error, higher_is_better=False, default_threshold=0.0, quality=False, binary=True),
        Evaluator("tokens", tokens_used, higher_is_better=False, quality=False, binary=False),
        Evaluator("cost_usd", cost_usd, higher_is_better=False, quality=False, binary=False),
    ]
}


def resolve(name: str, path: str | None = None) -> Evaluator:
    """A built-in evaluator by name, `llm_judge`, or a user's function by dotted path."""
    if name in BUILTIN and path is None:
        return BUILTIN[name]
    if name == "llm_judge" and path is None:
        from agentmon_pipeline.evaluation.llm_judge import judge_settings, llm_judge

        judge_settings()  # off unless configured: say so when the suite is loaded
        return Evaluator("llm_judge", llm_judge, default_threshold=0.5, binary=False)
    target = path or name
    if ":" not in target and "." not in target:
        known = ", ".join(sorted([*BUILTIN, "llm_judge"]))
        raise UserError(
            f"unknown evaluator {name!r}; built-in: {known}; or give a dotted path module:function"
        )
    fn = load_callable(target)
    if isinstance(fn, Evaluator):
        return fn
    return Evaluator(
        name,
        fn,
        higher_is_better=getattr(fn, "higher_is_better", True),
        default_threshold=getattr(fn, "default_threshold", None),
        quality=getattr(fn, "quality", True),
        binary=getattr(fn, "binary", None),
    )


def load_callable(target: str) -> Callable[..., Any]:
    """`package.module:attr` or `package.module.attr` -> the object."""
    module_name, _, attr = target.partition(":") if ":" in target else target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import {module_name!r} for {target!r} ({exc})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UserError(f"{module_name!r} has no {attr!r} (from {target!r})") from None
