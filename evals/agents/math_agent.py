"""An arithmetic agent for word problems, reporting (simulated) token usage like an LLM agent.

Versions: 2.0 the baseline; 2.1 mishandles products above 100 (a quality regression on about a
quarter of the cases); 2.2 answers like 2.0 but takes three times as long and uses more tokens.
"""

from __future__ import annotations

import re
import time

OPERATIONS = {
    "plus": lambda a, b: a + b,
    "minus": lambda a, b: a - b,
    "times": lambda a, b: a * b,
    "divided by": lambda a, b: a / b,
}
BASE_DELAY_S = 0.003


def solve(question: str) -> float | None:
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", question)]
    for word, op in OPERATIONS.items():
        if word in question and len(numbers) >= 2:
            return op(numbers[0], numbers[1])
    return None


def answer(question: str, *, version: str, case=None) -> dict:
    time.sleep(BASE_DELAY_S * (3 if version == "2.2" else 1))
    result = solve(question)
    if result is not None and version == "2.1" and "times" in question and result > 100:
        result = round(result, -1) + 1  # the regression: a "rounding" shortcut on big products
    text = "I cannot solve that." if result is None else f"The answer is {result:g}."
    words = len(question.split())
    usage = {"input_tokens": 40 + 2 * words, "output_tokens": 12 + (8 if version == "2.2" else 0)}
    return {"output": text, "usage": usage, "model": "acme-internal-7b"}
