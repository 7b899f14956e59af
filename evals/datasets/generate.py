"""Writes the datasets of the reference suites (deterministic; run it again after editing)."""

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write(name: str, rows: list[dict]) -> None:
    (HERE / name).write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def support_qa() -> None:
    import sys

    sys.path.insert(0, str(HERE.parents[1]))
    from evals.agents.support_bot import KNOWLEDGE

    templates = {
        "refund": ["How do I get a refund for order {n}?", "Can I have my money back for order {n}?",
                   "When will you reimburse order {n}?", "Refund status of order {n}, please"],
        "shipping": ["How long does shipping take to zone {n}?", "When will my delivery {n} arrive?",
                     "Do you ship to region {n}?", "What are the delivery options for parcel {n}?"],
        "password": ["I forgot my password (user {n})", "I am locked out of account {n}",
                     "How do I reset the password for account {n}?", "Cannot log in to account {n}"],
        "invoice": ["Where is my invoice for order {n}?", "I need a receipt for order {n}",
                    "Send me the billing statement for month {n}", "Invoice for order {n} is missing"],
        "cancel": ["How do I cancel plan {n}?", "Please cancel subscription {n}",
                   "I want to unsubscribe from plan {n}", "Stop my subscription {n} now"],
        "warranty": ["Is device {n} under warranty?", "My device {n} arrived broken",
                     "Warranty claim for serial {n}", "Device {n} has a defect, what now?"],
    }  # fmt: skip
    rng = random.Random(7)
    rows = []
    for topic, forms in templates.items():
        for i in range(24):
            rows.append({"id": f"{topic}-{i:02d}", "input": forms[i % 4].format(n=rng.randint(100, 999)),
                         "expected": KNOWLEDGE[topic], "tags": [topic]})  # fmt: skip
    unknown = "I'm sorry, I don't know. Let me connect you with a human agent."
    for i, q in enumerate(["What's the weather like?", "Tell me a joke", "Who won the match yesterday?",
                           "Do you like music?"]):  # fmt: skip
        rows.append({"id": f"other-{i:02d}", "input": q, "expected": unknown, "tags": ["other"]})
    for i in range(2):
        rows.append({"id": f"failure-{i:02d}", "input": f"Report a system failure in region {i}",
                     "expected": "escalated", "tags": ["failure"]})  # fmt: skip
    write("support-qa.jsonl", rows)


def math_word_problems() -> None:
    rng = random.Random(11)
    rows = []
    for op, fn in [("plus", lambda a, b: a + b), ("minus", lambda a, b: a - b),
                   ("times", lambda a, b: a * b), ("divided by", lambda a, b: a / b)]:  # fmt: skip
        for i in range(30):
            a, b = (
                (rng.randint(2, 40), rng.randint(2, 12))
                if op == "times"
                else (rng.randint(10, 999), rng.randint(2, 99))
            )
            rows.append({"id": f"{op.split()[0]}-{i:02d}", "input": f"What is {a} {op} {b}?",
                         "expected": f"{fn(a, b):g}", "tags": [op]})  # fmt: skip
    write("math-word-problems.jsonl", rows)


def summaries() -> None:
    rng = random.Random(3)
    words = ["agent", "latency", "tokens", "cost", "users", "session", "retries", "model", "tool", "cache", "answer", "quality", "error", "release", "version", "budget", "alert", "trace", "span", "metric"]  # fmt: skip
    cases, recorded = [], []
    for i in range(60):
        reference = " ".join(rng.choice(words) for _ in range(12))
        cases.append({"id": f"doc-{i:02d}", "input": f"Summarise document {i}", "expected": reference})
        for version, cut in (("v1", 0), ("v2", 6 if i % 3 == 0 else 0)):
            tokens = reference.split()
            output = " ".join(tokens[: len(tokens) - cut] if cut else tokens[:11] + [rng.choice(words)])
            recorded.append({"case_id": f"doc-{i:02d}", "version": version, "output": output,
                             "latency_ms": round(rng.lognormvariate(5.5, 0.25), 1)})  # fmt: skip
    write("summaries.jsonl", cases)
    write("summaries-recorded.jsonl", recorded)


if __name__ == "__main__":
    support_qa()
    math_word_problems()
    summaries()
