"""A user's evaluator, referenced by dotted path from the tests."""


def shouty(call) -> float:
    return float(str(call.output).isupper())
