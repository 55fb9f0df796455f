"""``GovernedToolset`` in real PydanticAI agent runs, with PydanticAI's own scripted models
(``FunctionModel``, ``TestModel``) standing in for the LLM: allow, deny, approval, failures,
fail-closed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
from pydantic_ai import Agent, ModelRetry, RunContext, Tool
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.toolsets import FunctionToolset

from conftest import make_client
from faramesh import DenyError, ExecutionGovernorClient, FarameshConnectionError
from faramesh.integrations.pydantic_ai import DENIAL_PREFIX, GovernedToolset, governed_toolset
from support import Server

calls: List[Any] = []


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def calc(a: int, b: int) -> int:
    """Add two integers."""
    calls.append(("calc", a, b))
    return a + b


def stripe(amount: int) -> str:
    """Refund a payment."""
    calls.append(("stripe", amount))
    return "refunded"


async def deploy(ctx: RunContext[str], service: str) -> str:
    """Deploy a service (the run's deps name the environment)."""
    calls.append(("deploy", service, ctx.deps))
    return f"{service} deployed to {ctx.deps}"


OPERATIONS = {"calc": "add", "stripe": "refund", "deploy": "release"}


class Script:
    """A ``FunctionModel`` function: one tool call per turn, then ``final``; keeps the last
    messages it was sent."""

    def __init__(self, *tool_calls: Tuple[str, Dict[str, Any]], final: str = "done") -> None:
        self.steps: Iterator[Tuple[str, Dict[str, Any]]] = iter(tool_calls)
        self.final = final
        self.count = 0
        self.messages: List[ModelMessage] = []

    def __call__(self, messages: List[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.messages = list(messages)
        step = next(self.steps, None)
        if step is None:
            return ModelResponse(parts=[TextPart(self.final)])
        self.count += 1
        name, args = step
        return ModelResponse(parts=[ToolCallPart(name, args, tool_call_id=f"call_{self.count}")])

    def returns(self) -> Dict[str, ToolReturnPart]:
        """The tool results the model was sent, by call id."""
        return {
            part.tool_call_id: part
            for message in self.messages
            for part in message.parts
            if isinstance(part, ToolReturnPart)
        }


def test_run_with_allowed_denied_and_approved_calls(client: ExecutionGovernorClient, agent: str) -> None:
    pending: List[Dict[str, Any]] = []

    def approve_later(action: Dict[str, Any]) -> None:
        pending.append(action)
        threading.Thread(
            target=lambda: client.approve_action(action["id"], reason="go ahead"), daemon=True
        ).start()

    toolset = governed_toolset(
        [calc, stripe, deploy],
        client=client,
        operations=OPERATIONS,
        on_pending=approve_later,
        max_wait_time=60,
    )
    script = Script(("calc", {"a": 2, "b": 3}), ("stripe", {"amount": 100}), ("deploy", {"service": "api"}))
    result = Agent(FunctionModel(script), deps_type=str, toolsets=[toolset]).run_sync("go", deps="staging")

    assert result.output == "done"
    assert calls == [("calc", 2, 3), ("deploy", "api", "staging")]
    assert len(pending) == 1 and pending[0]["tool"] == "deploy"
    returns = script.returns()
    assert (returns["call_1"].content, returns["call_1"].outcome) == (5, "success")
    # A refusal is a failed tool call whose message the model reads; the tool never ran.
    assert (returns["call_2"].content, returns["call_2"].outcome) == (
        f"{DENIAL_PREFIX}: Refunds are blocked in tests",
        "failed",
    )
    assert returns["call_3"].content == "api deployed to staging"

    actions = list(reversed(client.list_actions(agent_id=agent)))
    assert [(a["tool"], a["operation"], a["params"], a["status"]) for a in actions] == [
        ("calc", "add", {"a": 2, "b": 3}, "succeeded"),
        ("stripe", "refund", {"amount": 100}, "denied"),
        ("deploy", "release", {"service": "api"}, "succeeded"),
    ]
    assert actions[0]["result"] == 5
    assert actions[2]["result"] == "api deployed to staging" and actions[2]["reason"] == "go ahead"
    assert all(a["context"]["integration"] == "pydantic-ai" for a in actions)


def test_test_model_calls_every_governed_tool(client: ExecutionGovernorClient, agent: str) -> None:
    toolset = GovernedToolset(
        FunctionToolset([Tool(calc), Tool(stripe)]), client=client, operations=OPERATIONS
    )
    result = asyncio.run(Agent(TestModel(), toolsets=[toolset]).run("go"))

    # TestModel makes up arguments from each tool's schema and calls every tool once.
    by_tool = {a["tool"]: a for a in client.list_actions(agent_id=agent)}
    assert set(by_tool) == {"calc", "stripe"}
    params = by_tool["calc"]["params"]
    assert calls == [("calc", params["a"], params["b"])]
    assert (by_tool["calc"]["status"], by_tool["calc"]["result"]) == ("succeeded", params["a"] + params["b"])
    assert by_tool["stripe"]["status"] == "denied"
    assert f"{DENIAL_PREFIX}: Refunds are blocked in tests" in result.output


def test_pending_call_denied_by_a_human_or_not_decided_in_time_is_refused(
    client: ExecutionGovernorClient, agent: str
) -> None:
    def deny_later(action: Dict[str, Any]) -> None:
        threading.Thread(
            target=lambda: client.deny_action(action["id"], reason="change freeze"), daemon=True
        ).start()

    script = Script(("deploy", {"service": "api"}))
    toolset = governed_toolset([deploy], client=client, on_pending=deny_later, max_wait_time=60)
    Agent(FunctionModel(script), deps_type=str, toolsets=[toolset]).run_sync("go", deps="prod")
    assert script.returns()["call_1"].content == f"{DENIAL_PREFIX}: change freeze"

    script = Script(("deploy", {"service": "web"}))
    toolset = governed_toolset(
        [deploy], client=client, on_pending=lambda a: None, max_wait_time=0.05, poll_interval=0.01
    )
    Agent(FunctionModel(script), deps_type=str, toolsets=[toolset]).run_sync("go", deps="prod")
    assert str(script.returns()["call_1"].content).startswith(
        f"{DENIAL_PREFIX}: no one approved it within 0.05 seconds"
    )

    assert calls == []
    assert sorted(a["status"] for a in client.list_actions(agent_id=agent)) == ["denied", "pending_approval"]


def test_failures_of_the_tool_are_reported(client: ExecutionGovernorClient, agent: str) -> None:
    def broken(x: int) -> int:
        """Always fails."""
        raise ValueError(f"cannot handle {x}")

    def picky(x: int) -> int:
        """Asks the model for another x until it gets 2."""
        if x != 2:
            raise ModelRetry("x must be 2")
        return x

    script = Script(("calc", {"x": 1}), ("calc", {"x": 2}))
    toolset = governed_toolset([Tool(picky, name="calc")], client=client)
    Agent(FunctionModel(script), toolsets=[toolset]).run_sync("go")
    first, second = reversed(client.list_actions(agent_id=agent))
    assert (first["status"], first["reason"]) == ("failed", "ModelRetry: x must be 2")
    assert (second["status"], second["result"]) == ("succeeded", 2)

    toolset = governed_toolset([Tool(broken, name="calc")], client=client)
    with pytest.raises(ValueError, match="cannot handle 3"):
        Agent(FunctionModel(Script(("calc", {"x": 3}))), toolsets=[toolset]).run_sync("go")
    latest = client.list_actions(agent_id=agent)[0]
    assert (latest["status"], latest["reason"]) == ("failed", "ValueError: cannot handle 3")


def test_raise_on_deny_ends_the_run(client: ExecutionGovernorClient) -> None:
    toolset = governed_toolset([stripe], client=client, operations=OPERATIONS, raise_on_deny=True)
    with pytest.raises(DenyError) as info:
        Agent(FunctionModel(Script(("stripe", {"amount": 100}))), toolsets=[toolset]).run_sync("go")
    assert str(info.value) == f"{DENIAL_PREFIX}: Refunds are blocked in tests"
    assert info.value.reason_code == "POLICY_DENY"
    assert calls == []


def test_unreachable_server_fails_closed_unless_configured_to_fail_open(
    server_factory: Callable[..., Server],
) -> None:
    srv = server_factory("stopped")
    srv.stop()
    with make_client(srv.url, retry_backoff_factor=0.01) as closed:
        toolset = governed_toolset([calc], client=closed)
        with pytest.raises(FarameshConnectionError):
            Agent(FunctionModel(Script(("calc", {"a": 1, "b": 2}))), toolsets=[toolset]).run_sync("go")
    assert calls == []

    with make_client(srv.url, retry_backoff_factor=0.01, fail_open=True) as open_:
        script = Script(("calc", {"a": 1, "b": 2}))
        Agent(FunctionModel(script), toolsets=[governed_toolset([calc], client=open_)]).run_sync("go")
    assert calls == [("calc", 1, 2)]
    assert script.returns()["call_1"].content == 3
