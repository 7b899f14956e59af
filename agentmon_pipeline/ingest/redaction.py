"""Redaction of secrets and personal data before anything is stored, in DuckDB SQL.

Applied by the loader to every format (native, OTLP, Langfuse, benchmark spans) on the way into
raw: span names, error messages, inputs and outputs, every string value of `attributes` and
`resource`, event attributes, metric labels, and the lines kept in the quarantine. A match is
replaced by `[REDACTED:<kind>]`.

Kinds, in the order they are applied: JWTs, bearer tokens, Anthropic and OpenAI keys, AWS access
key ids, GitHub and Slack tokens, email addresses, IBANs, payment card numbers (13-19 digits,
spaces or dashes allowed, replaced only when the Luhn checksum holds), phone numbers (an
international +prefix, or groups separated by spaces, dots or dashes), then the extra patterns of
`agentmon.yaml`:

    redaction:
      patterns:
        - {name: employee_id, regex: "EMP-[0-9]{6}"}
      hash_user_ids: true           # user_id -> sha256 of (key, user_id), keyed by the variable below
      hash_key_env: AGENTMON_HASH_KEY

Each value is scanned by one cheap pattern first; only values that may hold something pay for
the full set. Inside JSON values nested below the top level (an object in an attribute), the
patterns that cannot break JSON syntax are applied to the nested JSON text (emails, keys, tokens,
extra patterns); card and phone numbers are looked for in strings only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmon_pipeline.errors import UserError

# kind -> RE2 pattern (DuckDB's regex engine)
BUILTIN: list[tuple[str, str]] = [
    ("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("bearer_token", r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{16,}"),
    ("anthropic_key", r"sk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai_key", r"sk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}"),
    ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ("iban", r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b"),
]
CARD = r"\b(?:[0-9][ -]?){12,18}[0-9]\b"
PHONE = (
    r"(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{2,4}\)|[0-9]{2,4})[ .-][0-9]{3,4}[ .-][0-9]{3,4}\b|\+[0-9]{8,15}\b"
)
# anything that may hold one of the kinds above; values without a match skip the full set
PREFILTER = r"@|sk-|AKIA|ASIA|gh[pousr]_|github_pat_|xox|eyJ|[Bb][Ee][Aa][Rr][Ee][Rr]|[0-9][ .-]?[0-9][ .-]?[0-9][ .-]?[0-9][ .-]?[0-9][ .-]?[0-9]|\+[0-9]|[A-Z]{2}[0-9]{2}"


@dataclass(frozen=True)
class RedactionPolicy:
    enabled: bool = True
    extra: tuple[tuple[str, str], ...] = ()
    hash_user_ids: bool = False
    hash_key_env: str = "AGENTMON_HASH_KEY"
    _prefilter_extra: tuple[str, ...] = field(default=(), repr=False)

    def hash_key(self) -> str:
        key = os.environ.get(self.hash_key_env)
        if not key:
            raise UserError(
                f"redaction.hash_user_ids is on: set the environment variable {self.hash_key_env}"
            )
        return key


DEFAULT = RedactionPolicy()


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _luhn_sql(digits: str) -> str:
    """True when the digit string passes the Luhn checksum (ISO/IEC 7812)."""
    d = f"(ord(substr({digits}, length({digits}) - i, 1)) - 48)"
    return (f"(list_sum(list_transform(range(length({digits})), lambda i: "
            f"case when i % 2 = 1 then (2 * {d}) // 10 + (2 * {d}) % 10 else {d} end)) % 10 = 0)")  # fmt: skip


def _replace(expr: str, kind: str, pattern: str) -> str:
    return f"regexp_replace({expr}, {_lit(pattern)}, {_lit(f'[REDACTED:{kind}]')}, 'g')"


def _patterns(policy: RedactionPolicy) -> list[tuple[str, str]]:
    return [*BUILTIN, *policy.extra]


def redact_text_sql(expr: str, policy: RedactionPolicy = DEFAULT) -> str:
    """A text value with every kind replaced (cards only when Luhn-valid)."""
    if not policy.enabled:
        return expr
    out = expr
    for kind, pattern in _patterns(policy):
        out = _replace(out, kind, pattern)
    digits = "regexp_replace(c, '[^0-9]', '', 'g')"
    cards = (f"list_reduce(list_filter(regexp_extract_all({out}, {_lit(CARD)}), lambda c: {_luhn_sql(digits)}), "
             f"lambda acc, c: replace(acc, c, '[REDACTED:card]'), {out})")  # fmt: skip
    out = _replace(cards, "phone", PHONE)
    return (f"(case when {expr} is null or not regexp_matches({expr}, {_lit(_prefilter(policy))}) then {expr} "
            f"else {out} end)")  # fmt: skip


def _prefilter(policy: RedactionPolicy) -> str:
    return "|".join([PREFILTER, *(f"(?:{p})" for _, p in policy.extra)])


def _json_safe_sql(expr: str, policy: RedactionPolicy) -> str:
    """Kinds that cannot break JSON syntax, applied to JSON text."""
    out = expr
    for kind, pattern in [*BUILTIN[:8], *policy.extra]:  # all but IBAN (may span a number)
        out = _replace(out, kind, pattern)
    return out


def redact_json_sql(expr: str, policy: RedactionPolicy = DEFAULT) -> str:
    """A JSON object with its string values redacted (nested values: the JSON-safe kinds)."""
    if not policy.enabled:
        return expr
    value = "e.value ->> '$'"
    rewritten = (
        f"case when json_type(e.value) = 'VARCHAR' then to_json({redact_text_sql(value, policy)}) "
        f"when json_type(e.value) in ('OBJECT', 'ARRAY') then ({_json_safe_sql('e.value::varchar', policy)})::json "
        f"else e.value end"
    )
    rewrite = (f"to_json(map_from_entries(list_transform(map_entries(({expr})::MAP(VARCHAR, JSON)), "
               f"lambda e: struct_pack(k := e.key, v := {rewritten}))))")  # fmt: skip
    return (f"(case when {expr} is null or json_type({expr}) <> 'OBJECT' "
            f"or not regexp_matches(({expr})::varchar, {_lit(_prefilter(policy))}) then {expr} else {rewrite} end)")  # fmt: skip


def hash_user_sql(expr: str, policy: RedactionPolicy) -> str:
    if not policy.hash_user_ids:
        return expr
    return f"(case when ({expr}) is null then null else 'uid_' || left(sha256({_lit(policy.hash_key())} || ':' || ({expr})), 32) end)"


USER_ID_ATTRIBUTES = ("user.id", "enduser.id")


def hash_user_attributes_sql(expr: str, policy: RedactionPolicy) -> str:
    """With hashing on, the attributes that carry the user id (OpenTelemetry's) are hashed too."""
    if not policy.hash_user_ids:
        return expr
    out = expr
    for key in USER_ID_ATTRIBUTES:
        get = f"(({out}) ->> {_lit(chr(36) + '.' + chr(34) + key + chr(34))})"  # parenthesized: ->> binds loosely
        out = (f"(case when {get} is null then {out} else json_merge_patch({out}, "
               f"json_object({_lit(key)}, {hash_user_sql(get, policy)})) end)")  # fmt: skip
    return out


def parse_redaction(section: Any, path: Path | str = "agentmon.yaml") -> RedactionPolicy:
    if section is None:
        return DEFAULT
    if not isinstance(section, dict):
        raise UserError(
            f"{path}: redaction: expected a mapping (enabled, patterns, hash_user_ids, hash_key_env)"
        )
    bad = sorted(set(section) - {"enabled", "patterns", "hash_user_ids", "hash_key_env"})
    if bad:
        raise UserError(
            f"{path}: redaction.{bad[0]}: unknown key; expected enabled, patterns, hash_user_ids, hash_key_env"
        )
    for key in ("enabled", "hash_user_ids"):  # "false" in quotes would be a true string
        if key in section and not isinstance(section[key], bool):
            raise UserError(f"{path}: redaction.{key}: expected true or false, got {section[key]!r}")
    extra = []
    for i, item in enumerate(section.get("patterns") or []):
        where = f"{path}: redaction.patterns[{i}]"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("regex"), str)
        ):
            raise UserError(f"{where}: expected {{name: ..., regex: ...}}")
        if not re.fullmatch(r"[a-z0-9_]+", item["name"]):
            raise UserError(
                f"{where}.name: use lower-case letters, digits and _ (it appears as [REDACTED:name])"
            )
        try:
            re.compile(item["regex"])
        except re.error as exc:
            raise UserError(f"{where}.regex: not a regular expression ({exc})") from None
        extra.append((item["name"], item["regex"]))
    return RedactionPolicy(
        enabled=bool(section.get("enabled", True)), extra=tuple(extra),
        hash_user_ids=bool(section.get("hash_user_ids", False)),
        hash_key_env=str(section.get("hash_key_env", "AGENTMON_HASH_KEY")),
    )  # fmt: skip
