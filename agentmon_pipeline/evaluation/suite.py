"""Benchmark suites: `evals/suites/<name>.yaml`, their datasets and recorded outputs.

Every mistake a user can make in a suite file is a UserError naming the file, the key (or line)
and the reason, raised when the suite is loaded, before any agent is called.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agentmon_pipeline.config import project_dir, settings
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.evaluation.evaluators import Evaluator, resolve

SUITE_KEYS = {
    "name", "description", "dataset", "agent", "agent_id", "outputs", "versions", "repeats",
    "timeout_s", "concurrency", "evaluators", "regression",
}  # fmt: skip
REGRESSION_KEYS = {"alpha", "min_effect", "min_relative_change", "min_latency_ms"}


@dataclass(frozen=True)
class EvaluatorSpec:
    name: str
    evaluator: Evaluator
    threshold: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RegressionPolicy:
    alpha: float = 0.05
    min_effect: float = 0.02  # absolute, for rates and scores in [0, 1]
    min_relative_change: float = 0.10  # relative, for latency, tokens and cost
    # and a latency regression must add at least this much to the p95: below a millisecond,
    # a difference is the machine's noise (thread scheduling, caches), not the agent's
    min_latency_ms: float = 1.0


@dataclass(frozen=True)
class Case:
    id: str
    input: Any
    expected: Any = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    cluster: str | None = None  # cases of one cluster (topic, passage, template) share their errors


@dataclass
class Suite:
    name: str
    path: Path | None
    cases: list[Case]
    versions: list[str]
    evaluators: list[EvaluatorSpec]
    agent: str | Callable[..., Any] | None = None  # module:callable (or the callable, from Python)
    agent_id: str | None = None  # the agent the benchmark calls are recorded under
    outputs: Path | None = None  # recorded outputs (a replay suite)
    repeats: int = 1
    timeout_s: float = 30.0
    concurrency: int = 4
    regression: RegressionPolicy = field(default_factory=RegressionPolicy)
    description: str = ""

    @property
    def baseline(self) -> str:
        return self.versions[0]

    @property
    def is_replay(self) -> bool:
        return self.outputs is not None

    @property
    def telemetry_agent_id(self) -> str:
        return self.agent_id or self.name

    @property
    def clusters(self) -> dict[str, str]:
        """Case id -> cluster, for the cases the dataset puts in one."""
        return {c.id: c.cluster for c in self.cases if c.cluster is not None}


def fingerprint(suite: Suite) -> str:
    """What a run of the suite measures: the suite file, its dataset (or recorded outputs) and the
    source of the agent it calls. A benchmark reruns when this changes (or on its schedule), not
    on every pipeline run: rerunning the same code on the same cases measures only the machine."""
    digest = hashlib.sha256()
    files = [suite.path, suite.outputs, *_agent_sources(suite.agent, suite.path)]
    for path in files:
        if path is not None and Path(path).is_file():
            digest.update(str(Path(path).name).encode() + b"\0" + Path(path).read_bytes())
    digest.update(
        json.dumps([[c.id, c.input, c.expected] for c in suite.cases], sort_keys=True, default=str).encode()
    )
    digest.update(json.dumps(suite.versions).encode())
    return digest.hexdigest()


def _agent_sources(agent: str | Callable[..., Any] | None, suite_path: Path | None) -> list[Path]:
    """The source file of the agent's module (module:callable, or the callable itself); a module
    beside the suite file first, as the suite imports it."""
    if agent is None:
        return []
    if callable(agent):
        source = inspect.getsourcefile(agent)
        return [Path(source)] if source else []
    module = agent.split(":", 1)[0]
    if suite_path is not None:
        for beside in (
            suite_path.parent / f"{module.replace('.', '/')}.py",
            suite_path.parent / module.replace(".", "/") / "__init__.py",
        ):
            if beside.is_file():
                return [beside]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return []
    return [Path(spec.origin)] if spec is not None and spec.origin and spec.origin != "built-in" else []


def suites_dir() -> Path:
    """AGENTMON_SUITES_DIR, else `$AGENTMON_HOME/suites/` (your suites), else in a home made by
    `agentmon demo` the repository's example suites (`evals/suites/`)."""
    return settings().suites_dir


def list_suites() -> list[Path]:
    folder = suites_dir()
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def find_suite(ref: str) -> Path:
    """A suite by name (under evals/suites/) or by path to a suite file anywhere."""
    path = Path(ref).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UserError(f"{ref}: no such suite file")
        return path.resolve()
    for candidate in list_suites():
        if candidate.stem == ref:
            return candidate
    names = ", ".join(p.stem for p in list_suites()) or "none"
    example = project_dir() / "evals" / "suites" / f"{ref}.yaml"
    hint = f"; the example is {example}" if example.is_file() and example.parent != suites_dir() else ""
    raise UserError(
        f"no suite named {ref!r} in {suites_dir()} (there are: {names}); or give a path to a suite file{hint}"
    )


def _fail(path: Path, key: str, reason: str) -> UserError:
    return UserError(f"{path}: {key}: {reason}")


def _number(path: Path, raw: dict, key: str, default: float, minimum: float, integer: bool = False) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, key, f"expected a number, got {value!r}")
    if integer and int(value) != value:
        raise _fail(path, key, f"expected a whole number, got {value!r}")
    if value < minimum:
        raise _fail(path, key, f"expected a number >= {minimum}, got {value!r}")
    return int(value) if integer else float(value)


def load_suite(ref: str | Path) -> Suite:
    path = find_suite(str(ref))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: not a readable YAML file ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of suite settings")
    unknown = sorted(set(raw) - SUITE_KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key; known keys: {', '.join(sorted(SUITE_KEYS))}")
    base = path.parent
    if str(base) not in sys.path:
        sys.path.append(str(base))  # a suite's own agent and evaluator modules may sit beside it

    def rel(key: str) -> Path | None:
        if raw.get(key) is None:
            return None
        if not isinstance(raw[key], str):
            raise _fail(path, key, "expected a file path")
        target = (base / raw[key]).resolve()
        if not target.is_file():
            raise _fail(path, key, f"no such file {target}")
        return target

    if not raw.get("dataset"):
        raise _fail(path, "dataset", "required: a JSONL file of cases")
    dataset = rel("dataset")
    outputs = rel("outputs")
    agent = raw.get("agent")
    if (agent is None) == (outputs is None):
        raise _fail(
            path, "agent", "give exactly one of `agent` (module:callable) or `outputs` (recorded outputs)"
        )
    if agent is not None and (not isinstance(agent, str) or ":" not in agent):
        raise _fail(path, "agent", f"expected module:callable, got {agent!r}")

    versions = raw.get("versions")
    if outputs is not None and versions is None:
        versions = _recorded_versions(outputs)
    if (
        not isinstance(versions, list)
        or len(versions) < 1
        or not all(isinstance(v, str | int | float) for v in versions)
    ):
        raise _fail(path, "versions", "expected a list of versions, the baseline first")
    versions = [str(v) for v in versions]
    if len(set(versions)) != len(versions):
        raise _fail(path, "versions", "a version is listed twice")

    regression = raw.get("regression") or {}
    if not isinstance(regression, dict):
        raise _fail(path, "regression", f"expected a mapping ({', '.join(sorted(REGRESSION_KEYS))})")
    bad = sorted(set(regression) - REGRESSION_KEYS)
    if bad:
        raise _fail(
            path, f"regression.{bad[0]}", f"unknown key; known keys: {', '.join(sorted(REGRESSION_KEYS))}"
        )
    alpha = _number(path, regression, "alpha", 0.05, 0.0)
    if not 0 < alpha < 1:
        raise _fail(path, "regression.alpha", f"expected a number between 0 and 1, got {alpha}")
    policy = RegressionPolicy(
        alpha=alpha,
        min_effect=_number(path, regression, "min_effect", 0.02, 0.0),
        min_relative_change=_number(path, regression, "min_relative_change", 0.10, 0.0),
        min_latency_ms=_number(path, regression, "min_latency_ms", 1.0, 0.0),
    )

    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise _fail(path, "name", "expected a non-empty name")
    return Suite(
        name=name,
        path=path,
        cases=load_cases(dataset),
        versions=versions,
        evaluators=_evaluators(path, raw.get("evaluators")),
        agent=agent,
        agent_id=raw.get("agent_id"),
        outputs=outputs,
        repeats=_number(path, raw, "repeats", 1, 1, integer=True),
        timeout_s=_number(path, raw, "timeout_s", 30.0, 0.001),
        concurrency=_number(path, raw, "concurrency", 4, 1, integer=True),
        regression=policy,
        description=str(raw.get("description", "")),
    )


def _evaluators(path: Path, raw: Any) -> list[EvaluatorSpec]:
    if not isinstance(raw, list) or not raw:
        raise _fail(path, "evaluators", "expected a list such as [{name: exact_match}, {name: latency_ms}]")
    specs, seen = [], set()
    for i, item in enumerate(raw):
        key = f"evaluators[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _fail(path, key, "expected {name: ..., threshold: ..., function: ..., params...}")
        item = dict(item)
        name = item.pop("name")
        if name in seen:
            raise _fail(path, key, f"evaluator {name!r} is listed twice (give it another name)")
        seen.add(name)
        function = item.pop("function", None)
        threshold = item.pop("threshold", None)
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
            raise _fail(path, f"{key}.threshold", f"expected a number, got {threshold!r}")
        params = item.pop("params", None) or {}
        params.update(item)  # the remaining keys are the evaluator's parameters
        try:
            evaluator = resolve(name, function)
        except UserError as exc:
            raise _fail(path, key, str(exc)) from None
        specs.append(
            EvaluatorSpec(
                name, evaluator, threshold if threshold is not None else evaluator.default_threshold, params
            )
        )
    return specs


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise UserError(f"{path} line {number}: not valid JSON") from None
        if not isinstance(row, dict):
            raise UserError(f"{path} line {number}: expected a JSON object")
        rows.append((number, row))
    return rows


def load_cases(path: Path) -> list[Case]:
    cases, seen = [], set()
    for number, row in _jsonl(path):
        if "id" not in row or "input" not in row:
            raise UserError(f"{path} line {number}: a case needs `id` and `input`")
        case_id = str(row["id"])
        if case_id in seen:
            raise UserError(f"{path} line {number}: case id {case_id!r} is used twice")
        seen.add(case_id)
        tags = row.get("tags") or []
        metadata = row.get("metadata") or {}
        if not isinstance(tags, list) or not isinstance(metadata, dict):
            raise UserError(f"{path} line {number}: `tags` must be a list and `metadata` an object")
        cluster = row.get("cluster")
        if cluster is not None and (isinstance(cluster, bool) or not isinstance(cluster, str | int)):
            raise UserError(
                f"{path} line {number}: `cluster` must be a string or a whole number, got {cluster!r}"
            )
        cases.append(Case(case_id, row["input"], row.get("expected"), [str(t) for t in tags], metadata,
                          None if cluster is None else str(cluster)))  # fmt: skip
    if not cases:
        raise UserError(f"{path}: no cases")
    return cases


def load_recorded(path: Path) -> list[dict]:
    """Recorded outputs of a replay suite: case_id, version, output, latency_ms (optional:
    repeat, error, input_tokens, output_tokens, cost_usd)."""
    rows = []
    for number, row in _jsonl(path):
        if "case_id" not in row or "version" not in row:
            raise UserError(f"{path} line {number}: a recorded output needs `case_id` and `version`")
        rows.append({**row, "case_id": str(row["case_id"]), "version": str(row["version"]), "_line": number})
    return rows


def _recorded_versions(path: Path) -> list[str]:
    versions: list[str] = []
    for row in load_recorded(path):
        if row["version"] not in versions:
            versions.append(row["version"])
    return versions
