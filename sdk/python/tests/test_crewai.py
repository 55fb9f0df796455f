"""``GovernedTool`` around CrewAI tools, in real ``Crew.kickoff`` runs whose LLM is a scripted
``BaseLLM``, in both of CrewAI's tool-calling modes (native function calls, and ``Action:`` text):
allow, deny, approval, failures, fail-closed; and the CrewAI example.

CrewAI needs its own virtualenv (see sdk/python/run-tests), so this module runs there.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

# Nothing leaves this machine: no CrewAI telemetry or tracing.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import pytest  # noqa: E402
from crewai import Agent, Crew, Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.tools import BaseTool, tool  # noqa: E402
from crewai.tools.tool_failure import ToolFailure  # noqa: E402
from pydantic import Field  # noqa: E402

from conftest import make_client  # noqa: E402
from faramesh import DenyError, ExecutionGovernorClient  # noqa: E402
from faramesh.integrations.crewai import DENIAL_PREFIX, GovernedTool, govern_tools, wrap_tool  # noqa: E402
from support import EXAMPLES, Server, check_example  # noqa: E402

# CrewAI's own code reads its deprecated settings on every run; those warnings are not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:crewai")

calls: List[Any] = []


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


@pytest.fixture(autouse=True)
def _crewai_data_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CrewAI keeps a database of every kickoff in the user's data directory (and the example,
    run as a subprocess, inherits this): keep them in the test's own directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@tool("calc")
def calc(a: int, b: int) -> int:
    """Add two integers."""
    calls.append(("calc", a, b))
    return a + b


@tool("stripe")
def stripe(amount: int) -> str:
    """Refund a payment."""
    calls.append(("stripe", amount))
    return "refunded"


@tool("deploy")
def deploy(service: str) -> str:
    """Deploy a service."""
    calls.append(("deploy", service))
    return f"{service} deployed"


@tool("calc")
def broken(x: int) -> int:
    """Always fails (named like the allowed calculator tool)."""
    raise ValueError(f"cannot handle {x}")


class ScriptedLLM(BaseLLM):
    """Stands in for the crew's LLM: one tool call per turn, then the final answer; keeps the
    messages of each call. ``native`` chooses CrewAI's mode: function calls (as an OpenAI-style
    model returns them) or ReAct text."""

    native: bool = True
    steps: List[Tuple[str, Dict[str, Any]]] = Field(default_factory=list)
    final: str = "done"
    seen: List[Any] = Field(default_factory=list)

    def call(  # type: ignore[override]
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        **kwargs: Any,
    ) -> Any:
        self.seen.append(json.loads(json.dumps(messages, default=str)))
        n = len(self.seen)
        if not self.steps:
            return self.final if self.native else f"Thought: I have what I need.\nFinal Answer: {self.final}"
        name, args = self.steps.pop(0)
        if self.native:
            return [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
            ]
        return f"Thought: I should use {name}.\nAction: {name}\nAction Input: {json.dumps(args)}"

    def supports_function_calling(self) -> bool:
        return self.native

    def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
        return 0  # a script spends no tokens (and CrewAI's estimate would log a warning per turn)

    def transcript(self) -> str:
        """Everything the LLM was sent in its last call (tool results included)."""
        return json.dumps(self.seen[-1])


def _kickoff(llm: ScriptedLLM, tools: List[BaseTool]) -> Any:
    agent = Agent(
        role="operator", goal="Run the requested operations", backstory="Careful.", llm=llm, tools=tools
    )
    task = Task(description="Do the operations.", expected_output="A short report.", agent=agent)
    return Crew(agents=[agent], tasks=[task]).kickoff()


MODES = pytest.mark.parametrize("native", [True, False], ids=["function-calls", "react-text"])


@MODES
def test_crew_with_allowed_denied_and_approved_calls(
    native: bool, client: ExecutionGovernorClient, agent: str
) -> None:
    pending: List[Dict[str, Any]] = []

    def approve_later(action: Dict[str, Any]) -> None:
        pending.append(action)
        threading.Thread(
            target=lambda: client.approve_action(action["id"], reason="go ahead"), daemon=True
        ).start()

    tools = [
        GovernedTool(calc, client=client, operation="add"),
        GovernedTool(stripe, client=client, operation="refund"),
        GovernedTool(deploy, client=client, operation="release", on_pending=approve_later, max_wait_time=60),
    ]
    llm = ScriptedLLM(
        model="scripted",
        native=native,
        steps=[("calc", {"a": 2, "b": 3}), ("stripe", {"amount": 100}), ("deploy", {"service": "api"})],
    )
    output = _kickoff(llm, tools)

    assert output.raw == "done"
    assert calls == [("calc", 2, 3), ("deploy", "api")]
    assert len(pending) == 1 and pending[0]["tool"] == "deploy"
    transcript = llm.transcript()
    assert f"{DENIAL_PREFIX}: Refunds are blocked in tests" in transcript
    assert "api deployed" in transcript
    # CrewAI records the refusal as a failed tool call of the task.
    [failure] = output.tasks_output[0].tool_failures
    assert failure.tool_name == "stripe"
    assert failure.message == f"{DENIAL_PREFIX}: Refunds are blocked in tests"

    actions = list(reversed(client.list_actions(agent_id=agent)))
    assert [(a["tool"], a["operation"], a["params"], a["status"]) for a in actions] == [
        ("calc", "add", {"a": 2, "b": 3}, "succeeded"),
        ("stripe", "refund", {"amount": 100}, "denied"),
        ("deploy", "release", {"service": "api"}, "succeeded"),
    ]
    assert actions[0]["result"] == 5
    assert actions[2]["result"] == "api deployed" and actions[2]["reason"] == "go ahead"
    assert all(a["context"]["integration"] == "crewai" for a in actions)


def test_a_failing_tool_is_reported_as_failed(client: ExecutionGovernorClient, agent: str) -> None:
    llm = ScriptedLLM(model="scripted", steps=[("calc", {"x": 3})])
    _kickoff(llm, [wrap_tool(broken, client=client)])
    assert "cannot handle 3" in llm.transcript()
    [action] = client.list_actions(agent_id=agent)
    assert (action["status"], action["reason"]) == ("failed", "ValueError: cannot handle 3")


def test_keeps_the_wrapped_tools_interface_and_is_called_like_crewai_does(
    client: ExecutionGovernorClient, agent: str
) -> None:
    governed = GovernedTool(calc, client=client, operation="add")
    assert isinstance(governed, BaseTool)
    assert governed.name == calc.name and governed.description == calc.description
    assert governed.args_schema is calc.args_schema

    assert governed.run(a=2, b=2) == 4  # native function calls
    assert governed.to_structured_tool().invoke({"a": 3, "b": 3}) == 6  # ReAct text
    assert asyncio.run(governed.arun(a=4, b=4)) == 8
    assert calls == [("calc", 2, 2), ("calc", 3, 3), ("calc", 4, 4)]
    assert [a["result"] for a in reversed(client.list_actions(agent_id=agent))] == [4, 6, 8]

    [refund] = govern_tools([stripe], client=client, operation="refund")
    refusal = refund.run(amount=1)
    assert isinstance(refusal, ToolFailure)
    assert refusal.as_agent_message() == f"{DENIAL_PREFIX}: Refunds are blocked in tests"
    assert refusal.details["reason_code"] == "POLICY_DENY"

    with pytest.raises(DenyError) as info:
        GovernedTool(stripe, client=client, operation="refund", raise_on_deny=True).run(amount=1)
    assert str(info.value) == f"{DENIAL_PREFIX}: Refunds are blocked in tests"
    assert calls == [("calc", 2, 2), ("calc", 3, 3), ("calc", 4, 4)]


def test_pending_call_denied_by_a_human_or_not_decided_in_time_is_refused(
    client: ExecutionGovernorClient, agent: str
) -> None:
    def deny_later(action: Dict[str, Any]) -> None:
        threading.Thread(
            target=lambda: client.deny_action(action["id"], reason="change freeze"), daemon=True
        ).start()

    denied = GovernedTool(deploy, client=client, on_pending=deny_later, max_wait_time=60).run(service="api")
    assert denied.message == f"{DENIAL_PREFIX}: change freeze"
    undecided = GovernedTool(
        deploy, client=client, on_pending=lambda a: None, max_wait_time=0.05, poll_interval=0.01
    ).run(service="web")
    assert undecided.message.startswith(f"{DENIAL_PREFIX}: no one approved it within 0.05 seconds")
    assert calls == []
    assert sorted(a["status"] for a in client.list_actions(agent_id=agent)) == ["denied", "pending_approval"]


def test_unreachable_server_fails_closed_unless_configured_to_fail_open(
    server_factory: Callable[..., Server],
) -> None:
    srv = server_factory("stopped")
    srv.stop()
    with make_client(srv.url, retry_backoff_factor=0.01) as c:
        llm = ScriptedLLM(model="scripted", steps=[("calc", {"a": 1, "b": 2})])
        # CrewAI hands a tool's exception to the agent as text; the tool itself never ran.
        _kickoff(llm, [GovernedTool(calc, client=c)])
    assert calls == []
    assert "Could not reach the Faramesh server" in llm.transcript()

    with make_client(srv.url, retry_backoff_factor=0.01, fail_open=True) as c:
        assert GovernedTool(calc, client=c).run(a=1, b=2) == 3
    assert calls == [("calc", 1, 2)]


def test_crewai_example(server_factory: Callable[..., Server], tmp_path: Path) -> None:
    srv = server_factory("examples", policy=EXAMPLES / "policy.yaml")
    check_example(
        EXAMPLES / "crewai_agent.py",
        "crewai-example-agent",
        "Faramesh denied this call: Destructive shell commands are blocked",
        srv,
        tmp_path / "cwd",
    )
