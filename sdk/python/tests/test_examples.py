"""The examples in examples/ run end to end; the pending call is approved with the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import pytest

from support import EXAMPLES, Server, check_example, faramesh_bin

POLICY = EXAMPLES / "policy.yaml"


def test_example_policy_is_valid_and_its_cases_pass() -> None:
    validate = subprocess.run(
        [faramesh_bin(), "policy", "validate", str(POLICY), "--no-color"], capture_output=True, text=True
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    cases = subprocess.run(
        [faramesh_bin(), "policy", "test", str(POLICY), str(EXAMPLES / "policy.cases.yaml"), "--no-color"],
        capture_output=True,
        text=True,
    )
    assert cases.returncode == 0, cases.stdout + cases.stderr


@pytest.mark.parametrize(
    "script, agent, denial",
    [
        (
            "python_agent.py",
            "python-example-agent",
            "refused by Faramesh: Destructive shell commands are blocked",
        ),
        (
            "langchain_agent.py",
            "langchain-example-agent",
            "Faramesh denied this call: Destructive shell commands are blocked",
        ),
        (
            "langgraph_agent.py",
            "langgraph-example-agent",
            "Faramesh denied this call: Destructive shell commands are blocked",
        ),
        (
            "openai_agents_agent.py",
            "openai-agents-example-agent",
            "Faramesh denied this call: Destructive shell commands are blocked",
        ),
        (
            "pydantic_ai_agent.py",
            "pydantic-ai-example-agent",
            '{"error":"Faramesh denied this call: Destructive shell commands are blocked"}',
        ),
    ],
)
def test_example_runs_allowed_denied_and_approved_calls(
    script: str, agent: str, denial: str, server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    srv = server_factory("examples", policy=POLICY)
    check_example(EXAMPLES / script, agent, denial, srv, tmp_path / "cwd")
