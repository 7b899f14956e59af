"""`llm_judge`: a model grades the answer, through any OpenAI-compatible chat endpoint.

Off unless configured: a suite that lists it needs `AGENTMON_JUDGE_BASE_URL` (e.g.
`http://localhost:11434/v1` for a local server) and `AGENTMON_JUDGE_MODEL`;
`AGENTMON_JUDGE_API_KEY` is sent as a bearer token when set. Nothing else calls a network.
The judge answers with a score from 0 to 10, returned as 0 to 1; an answer without a score is an
evaluator error for that call (a null score), never a zero.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.evaluation.evaluators import Call, as_text

PROMPT = """You grade the answer of an AI agent. Criteria: {criteria}
Question: {input}
Reference answer (may be empty): {expected}
Agent's answer: {output}
Reply with JSON only: {{"score": <integer 0 to 10>, "reason": "<one sentence>"}}"""
DEFAULT_CRITERIA = "correct, complete and relevant to the question; consistent with the reference answer"


def judge_settings() -> tuple[str, str, str | None]:
    base, model = os.environ.get("AGENTMON_JUDGE_BASE_URL"), os.environ.get("AGENTMON_JUDGE_MODEL")
    if not base or not model:
        raise UserError("llm_judge is off: set AGENTMON_JUDGE_BASE_URL and AGENTMON_JUDGE_MODEL to use it")
    return base.rstrip("/"), model, os.environ.get("AGENTMON_JUDGE_API_KEY")


def parse_score(text: str) -> float:
    try:
        value = json.loads(text)["score"]
    except (ValueError, KeyError, TypeError):
        match = re.search(r"\b(10|\d)(?:\.\d+)?\b", text)
        if not match:
            raise ValueError(f"the judge gave no score: {text[:200]!r}") from None
        value = match.group()
    score = float(value)
    if not 0 <= score <= 10:
        raise ValueError(f"the judge's score {score} is not between 0 and 10")
    return score / 10


def llm_judge(call: Call, criteria: str = DEFAULT_CRITERIA, timeout_s: float = 30.0) -> float:
    base, model, key = judge_settings()
    prompt = PROMPT.format(criteria=criteria, input=as_text(call.input), expected=as_text(call.expected),
                           output=as_text(call.output))  # fmt: skip
    body = json.dumps({"model": model, "temperature": 0, "messages": [{"role": "user", "content": prompt}]})
    request = urllib.request.Request(f"{base}/chat/completions", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        answer = json.loads(response.read())
    return parse_score(answer["choices"][0]["message"]["content"])
