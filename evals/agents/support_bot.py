"""A support bot that answers from a small knowledge base.

Versions: 1.0 the baseline; 1.1 answers refund questions with an outdated policy (a quality
regression on about a fifth of the cases); 1.2 answers like 1.0 but takes three times as long
(a latency regression).
"""

from __future__ import annotations

import time

KNOWLEDGE = {
    "refund": "Refunds are issued to the original payment method within 5 business days.",
    "shipping": "Standard shipping takes 3 to 5 business days; express takes 1 to 2.",
    "password": "Reset your password from the login page with the Forgot password link.",
    "invoice": "Invoices are in Billing, under Account settings, as PDF files.",
    "cancel": "You can cancel your subscription at any time from Account settings.",
    "warranty": "Every device has a two year warranty covering manufacturing defects.",
}
KEYWORDS = {
    "refund": ("refund", "money back", "reimburse"),
    "shipping": ("shipping", "delivery", "arrive", "ship"),
    "password": ("password", "log in", "login", "locked out"),
    "invoice": ("invoice", "receipt", "billing statement"),
    "cancel": ("cancel", "unsubscribe", "stop my subscription"),
    "warranty": ("warranty", "broken", "defect"),
}
OUTDATED_REFUND = "Refunds take up to 30 days and are issued as store credit."
BASE_DELAY_S = 0.004


def topic_of(question: str) -> str | None:
    text = question.lower()
    for topic, words in KEYWORDS.items():
        if any(w in text for w in words):
            return topic
    return None


def answer(question: str, *, version: str, case=None) -> str:
    if "system failure" in question.lower():
        raise RuntimeError("knowledge base unavailable for this question")
    time.sleep(BASE_DELAY_S * (3 if version == "1.2" else 1))
    topic = topic_of(question)
    if topic is None:
        return "I'm sorry, I don't know. Let me connect you with a human agent."
    if topic == "refund" and version == "1.1":
        return OUTDATED_REFUND
    return KNOWLEDGE[topic]
