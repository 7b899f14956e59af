"""llm_judge against a local fake OpenAI-compatible server: off unless configured."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.evaluation.evaluators import Call, resolve
from agentmon_pipeline.evaluation.llm_judge import parse_score


@pytest.fixture
def fake_judge(monkeypatch):
    seen: list[dict] = []
    replies = iter(['{"score": 8, "reason": "mostly right"}', "I would say 3 out of 10.", "no idea"])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            reply = {"choices": [{"message": {"role": "assistant", "content": next(replies)}}]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AGENTMON_JUDGE_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    monkeypatch.setenv("AGENTMON_JUDGE_MODEL", "judge-model")
    monkeypatch.setenv("AGENTMON_JUDGE_API_KEY", "sk-test")
    yield seen
    server.shutdown()


def test_off_unless_configured(monkeypatch):
    monkeypatch.delenv("AGENTMON_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("AGENTMON_JUDGE_MODEL", raising=False)
    with pytest.raises(
        UserError, match="llm_judge is off: set AGENTMON_JUDGE_BASE_URL and AGENTMON_JUDGE_MODEL"
    ):
        resolve("llm_judge")


def test_judge_scores_through_the_endpoint(fake_judge):
    judge = resolve("llm_judge")
    call = Call("c1", "What is the capital of France?", "Paris", output="It is Paris.")
    assert judge.score(call, {}) == 0.8
    request = fake_judge[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "judge-model" and request["body"]["temperature"] == 0
    assert "It is Paris." in request["body"]["messages"][0]["content"]
    assert judge.score(call, {"criteria": "brevity"}) == 0.3  # a score in prose is read too
    assert "brevity" in fake_judge[1]["body"]["messages"][0]["content"]
    with pytest.raises(ValueError, match="the judge gave no score"):
        judge.score(call, {})


def test_parse_score_bounds():
    assert parse_score('{"score": 10}') == 1.0
    with pytest.raises(ValueError, match="not between 0 and 10"):
        parse_score('{"score": 42}')
