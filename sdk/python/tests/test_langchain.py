"""`GovernedTool` around LangChain tools: allow, deny (return or raise), approval, reporting."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any, Dict, List

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, InjectedToolCallId, Tool, ToolException, tool

from faramesh import DenyError, ExecutionGovernorClient
from faramesh.integrations.langchain import (
    DENIAL_PREFIX,
    GovernedTool,
    GovernedToolDenied,
    govern_tools,
    wrap_tool,
)

calls: List[Any] = []


@tool
def calc(a: int, b: int) -> int:
    """Add two integers."""
    calls.append(("calc", a, b))
    return a + b


@tool
def stripe(amount: int) -> str:
    """Refund a payment."""
    calls.append(("stripe", amount))
    return "refunded"


@tool
def deploy(service: str) -> str:
    """Deploy a service."""
    calls.append(("deploy", service))
    return f"{service} deployed"


@tool("calc")
def broken(x: int) -> int:
    """Always fails (named like the allowed calculator tool)."""
    raise ValueError(f"cannot handle {x}")


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def _actions(client: ExecutionGovernorClient, agent: str) -> List[Dict[str, Any]]:
    return client.list_actions(agent_id=agent)


def test_keeps_the_wrapped_tools_interface(client: ExecutionGovernorClient) -> None:
    governed = GovernedTool(calc, client=client)
    assert isinstance(governed, BaseTool)
    assert governed.name == "calc"
    assert governed.description == calc.description
    assert governed.args == calc.args
    assert governed.tool_call_schema is calc.tool_call_schema or (
        governed.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
        == calc.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    )


def test_allowed_call_runs_and_is_reported(client: ExecutionGovernorClient, agent: str) -> None:
    governed = GovernedTool(calc, client=client, operation="add")
    assert governed.invoke({"a": 2, "b": 3}) == 5
    assert calls == [("calc", 2, 3)]
    [action] = _actions(client, agent)
    assert (action["tool"], action["operation"], action["params"]) == ("calc", "add", {"a": 2, "b": 3})
    assert action["context"]["integration"] == "langchain"
    assert action["status"] == "succeeded"
    assert action["result"] == 5


def test_tool_call_input_gives_a_tool_message(client: ExecutionGovernorClient) -> None:
    governed = GovernedTool(calc, client=client, operation="add")
    message = governed.invoke({"name": "calc", "args": {"a": 1, "b": 1}, "id": "call-1", "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    assert message.content == "2" and message.tool_call_id == "call-1"


def test_injected_tool_call_id_reaches_the_tool_but_not_the_params(
    client: ExecutionGovernorClient, agent: str
) -> None:
    @tool("calc")
    def answer(a: int, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Say which call asked."""
        calls.append(("answer", a, tool_call_id))
        return f"{a} for {tool_call_id}"

    governed = GovernedTool(answer, client=client)
    message = governed.invoke({"name": "calc", "args": {"a": 1}, "id": "call-7", "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    assert (message.content, message.tool_call_id) == ("1 for call-7", "call-7")
    assert calls == [("answer", 1, "call-7")]
    [action] = _actions(client, agent)
    assert action["params"] == {"a": 1}
    assert (action["status"], action["result"]) == ("succeeded", "1 for call-7")


def test_denied_call_returns_a_refusal(client: ExecutionGovernorClient, agent: str) -> None:
    governed = GovernedTool(stripe, client=client, operation="refund")
    answer = governed.invoke({"amount": 100})
    assert answer == f"{DENIAL_PREFIX}: Refunds are blocked in tests"
    assert calls == []
    [action] = _actions(client, agent)
    assert action["status"] == "denied" and action["params"] == {"amount": 100}


def test_denied_call_raises_when_asked(client: ExecutionGovernorClient) -> None:
    governed = GovernedTool(stripe, client=client, operation="refund", raise_on_deny=True)
    with pytest.raises(GovernedToolDenied) as info:
        governed.invoke({"amount": 100})
    assert isinstance(info.value, DenyError) and isinstance(info.value, ToolException)
    assert str(info.value) == f"{DENIAL_PREFIX}: Refunds are blocked in tests"
    assert calls == []
    # An enclosing handle_tool_error turns it into text for the agent.
    handled = GovernedTool(
        stripe, client=client, operation="refund", raise_on_deny=True, handle_tool_error=True
    )
    assert handled.invoke({"amount": 1}) == f"{DENIAL_PREFIX}: Refunds are blocked in tests"


def test_pending_call_waits_and_runs_once_approved(client: ExecutionGovernorClient, agent: str) -> None:
    pending: List[Dict[str, Any]] = []

    def approve_later(action: Dict[str, Any]) -> None:
        pending.append(action)
        threading.Thread(target=lambda: client.approve_action(action["id"]), daemon=True).start()

    governed = GovernedTool(
        deploy, client=client, operation="release", on_pending=approve_later, max_wait_time=60
    )
    assert governed.invoke({"service": "api"}) == "api deployed"
    assert len(pending) == 1
    assert calls == [("deploy", "api")]
    [action] = _actions(client, agent)
    assert action["status"] == "succeeded"


def test_pending_call_denied_by_a_human_is_refused(client: ExecutionGovernorClient) -> None:
    def deny_later(action: Dict[str, Any]) -> None:
        threading.Thread(
            target=lambda: client.deny_action(action["id"], reason="change freeze"), daemon=True
        ).start()

    governed = GovernedTool(
        deploy, client=client, operation="release", on_pending=deny_later, max_wait_time=60
    )
    assert governed.invoke({"service": "api"}) == f"{DENIAL_PREFIX}: change freeze"
    assert calls == []


def test_pending_call_not_decided_in_time_is_refused(client: ExecutionGovernorClient) -> None:
    governed = GovernedTool(
        deploy,
        client=client,
        operation="release",
        on_pending=lambda a: None,
        max_wait_time=0.05,
        poll_interval=0.01,
    )
    answer = governed.invoke({"service": "api"})
    assert answer.startswith(f"{DENIAL_PREFIX}: no one approved it within 0.05 seconds")
    assert calls == []


def test_failure_of_the_wrapped_tool_is_reported(client: ExecutionGovernorClient, agent: str) -> None:
    governed = GovernedTool(broken, client=client, operation="run")
    with pytest.raises(ValueError):
        governed.invoke({"x": 3})
    [action] = _actions(client, agent)
    assert action["status"] == "failed"
    assert action["reason"] == "ValueError: cannot handle 3"


def test_string_input_tools(client: ExecutionGovernorClient, agent: str) -> None:
    echo = Tool(name="http", description="Fetch a URL", func=lambda url: f"fetched {url}")
    governed = wrap_tool(echo, client=client, operation="get")
    assert governed.invoke("http://127.0.0.1/health") == "fetched http://127.0.0.1/health"
    [action] = _actions(client, agent)
    assert action["params"] == {"input": "http://127.0.0.1/health"}
    assert action["status"] == "succeeded"


def test_async_invocation(client: ExecutionGovernorClient, agent: str) -> None:
    governed, refused = govern_tools([calc, stripe], client=client, operation="refund")
    assert asyncio.run(governed.ainvoke({"a": 4, "b": 4})) == 8
    assert asyncio.run(refused.ainvoke({"amount": 1})) == f"{DENIAL_PREFIX}: Refunds are blocked in tests"
    assert sorted(a["status"] for a in _actions(client, agent)) == ["denied", "succeeded"]
