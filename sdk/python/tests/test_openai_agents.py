"""Governed function tools in real OpenAI Agents SDK runs (``Runner.run``), with the SDK's own
scripted model standing in for the LLM: allow, deny, approval, failures, fail-closed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Dict, List, Sequence

import pytest
from agents import Agent, FunctionTool, RunConfig, Runner, function_tool
from agents.exceptions import UserError
from agents.testing import ScriptedModel, assistant_message, function_call

from conftest import make_client
from faramesh import DenyError, ExecutionGovernorClient, FarameshConnectionError
from faramesh.integrations.openai_agents import (
    DENIAL_PREFIX,
    govern_function_tool,
    govern_tools,
    governed_function_tool,
)
from support import Server

calls: List[Any] = []


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def _script(*tool_calls: Sequence[Any], final: str = "done") -> ScriptedModel:
    """A model that makes one tool call per turn, then answers ``final``."""
    steps: List[Any] = [
        [function_call(name, args, call_id=f"call_{n}")] for n, (name, args) in enumerate(tool_calls, start=1)
    ]
    steps.append([assistant_message(final)])
    return ScriptedModel(steps)


def _run(model: ScriptedModel, tools: List[FunctionTool]) -> Any:
    agent = Agent(name="ops", instructions="Use the tools.", tools=tools, model=model)
    return asyncio.run(Runner.run(agent, "go", run_config=RunConfig(tracing_disabled=True)))


def _tool_outputs(model: ScriptedModel) -> Dict[str, str]:
    """What the model was handed as each tool call's output, by call id."""
    last = model.last_call
    assert last is not None
    return {
        item["call_id"]: item["output"]
        for item in last.input
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    }


def _approve_in_background(
    client: ExecutionGovernorClient, pending: List[Dict[str, Any]]
) -> Callable[[Dict[str, Any]], None]:
    def on_pending(action: Dict[str, Any]) -> None:
        pending.append(action)
        threading.Thread(
            target=lambda: client.approve_action(action["id"], reason="go ahead"), daemon=True
        ).start()

    return on_pending


def test_run_with_allowed_denied_and_approved_calls(client: ExecutionGovernorClient, agent: str) -> None:
    pending: List[Dict[str, Any]] = []
    on_pending = _approve_in_background(client, pending)

    @governed_function_tool(client=client, operation="add")
    def calc(a: int, b: int) -> int:
        """Add two integers."""
        calls.append(("calc", a, b))
        return a + b

    @governed_function_tool(client=client, operation="refund")
    def stripe(amount: int) -> str:
        """Refund a payment."""
        calls.append(("stripe", amount))
        return "refunded"

    @governed_function_tool(client=client, operation="release", on_pending=on_pending, max_wait_time=60)
    async def deploy(service: str) -> str:
        """Deploy a service."""
        calls.append(("deploy", service))
        return f"{service} deployed"

    model = _script(("calc", {"a": 2, "b": 3}), ("stripe", {"amount": 100}), ("deploy", {"service": "api"}))
    result = _run(model, [calc, stripe, deploy])

    assert result.final_output == "done"
    assert calls == [("calc", 2, 3), ("deploy", "api")]
    assert len(pending) == 1 and pending[0]["tool"] == "deploy"
    assert _tool_outputs(model) == {
        "call_1": "5",
        "call_2": f"{DENIAL_PREFIX}: Refunds are blocked in tests",
        "call_3": "api deployed",
    }

    actions = list(reversed(client.list_actions(agent_id=agent)))
    assert [(a["tool"], a["operation"], a["params"], a["status"]) for a in actions] == [
        ("calc", "add", {"a": 2, "b": 3}, "succeeded"),
        ("stripe", "refund", {"amount": 100}, "denied"),
        ("deploy", "release", {"service": "api"}, "succeeded"),
    ]
    assert actions[0]["result"] == 5
    assert actions[1]["reason"] == "Refunds are blocked in tests"
    assert actions[2]["result"] == "api deployed" and actions[2]["reason"] == "go ahead"
    assert all(a["context"]["integration"] == "openai-agents" for a in actions)


def test_pending_call_denied_by_a_human_or_not_decided_in_time_is_refused(
    client: ExecutionGovernorClient, agent: str
) -> None:
    def deny_later(action: Dict[str, Any]) -> None:
        threading.Thread(
            target=lambda: client.deny_action(action["id"], reason="change freeze"), daemon=True
        ).start()

    def deploy_tool(**options: Any) -> FunctionTool:
        @governed_function_tool(client=client, operation="release", **options)
        def deploy(service: str) -> str:
            """Deploy a service."""
            calls.append(("deploy", service))
            return "deployed"

        return deploy

    denied = _script(("deploy", {"service": "api"}))
    _run(denied, [deploy_tool(on_pending=deny_later, max_wait_time=60)])
    assert _tool_outputs(denied)["call_1"] == f"{DENIAL_PREFIX}: change freeze"

    undecided = _script(("deploy", {"service": "web"}))
    _run(undecided, [deploy_tool(on_pending=lambda a: None, max_wait_time=0.05, poll_interval=0.01)])
    assert _tool_outputs(undecided)["call_1"].startswith(
        f"{DENIAL_PREFIX}: no one approved it within 0.05 seconds"
    )

    assert calls == []
    statuses = sorted(a["status"] for a in client.list_actions(agent_id=agent))
    assert statuses == ["denied", "pending_approval"]


def test_a_failing_function_is_reported_as_failed(client: ExecutionGovernorClient, agent: str) -> None:
    @governed_function_tool(client=client)
    def calc(x: int) -> int:
        """Always fails."""
        raise ValueError(f"cannot handle {x}")

    model = _script(("calc", {"x": 3}))
    _run(model, [calc])

    # The SDK's default failure_error_function still decides what the model reads ...
    assert _tool_outputs(model)["call_1"] == "An error occurred while running the tool. Please try again."
    # ... and Faramesh records the exception itself.
    [action] = client.list_actions(agent_id=agent)
    assert action["status"] == "failed"
    assert action["reason"] == "ValueError: cannot handle 3"


def test_govern_function_tool_copies_an_existing_tool(client: ExecutionGovernorClient, agent: str) -> None:
    @function_tool
    def calc(a: int, b: int) -> int:
        """Add two integers."""
        calls.append(("calc", a, b))
        return a + b

    @function_tool(name_override="stripe")
    def refund(amount: int) -> str:
        """Refund a payment."""
        calls.append(("stripe", amount))
        return "refunded"

    governed, governed_refund = govern_tools([calc, refund], client=client, operation="refund")
    assert isinstance(governed, FunctionTool) and governed is not calc
    assert (governed.name, governed.description, governed.params_json_schema) == (
        calc.name,
        calc.description,
        calc.params_json_schema,
    )
    assert governed_refund.name == "stripe"

    model = _script(("calc", {"a": 1, "b": 1}), ("stripe", {"amount": 5}))
    _run(model, [governed, governed_refund])
    assert _tool_outputs(model) == {"call_1": "2", "call_2": f"{DENIAL_PREFIX}: Refunds are blocked in tests"}
    assert calls == [("calc", 1, 1)]
    actions = list(reversed(client.list_actions(agent_id=agent)))
    assert [(a["tool"], a["status"], a["result"]) for a in actions] == [
        ("calc", "succeeded", 2),
        ("stripe", "denied", None),
    ]

    # The original tool is untouched: running it submits nothing.
    _run(_script(("calc", {"a": 4, "b": 4})), [calc])
    assert calls[-1] == ("calc", 4, 4)
    assert len(client.list_actions(agent_id=agent)) == 2
    with pytest.raises(TypeError):
        govern_function_tool(lambda: None)  # type: ignore[arg-type]


def test_raise_on_deny_ends_the_run(client: ExecutionGovernorClient) -> None:
    @governed_function_tool(client=client, operation="refund", raise_on_deny=True)
    def stripe(amount: int) -> str:
        """Refund a payment."""
        calls.append(("stripe", amount))
        return "refunded"

    # The SDK ends the run with its UserError, caused by the DenyError.
    with pytest.raises(UserError) as info:
        _run(_script(("stripe", {"amount": 100})), [stripe])
    denial = info.value.__cause__
    assert isinstance(denial, DenyError)
    assert str(denial) == f"{DENIAL_PREFIX}: Refunds are blocked in tests"
    assert denial.reason_code == "POLICY_DENY"
    assert calls == []


def test_unreachable_server_fails_closed_unless_configured_to_fail_open(
    server_factory: Callable[..., Server],
) -> None:
    srv = server_factory("stopped")
    srv.stop()

    def calc_tool(c: ExecutionGovernorClient) -> FunctionTool:
        @governed_function_tool(client=c)
        def calc(a: int, b: int) -> int:
            """Add two integers."""
            calls.append(("calc", a, b))
            return a + b

        return calc

    with make_client(srv.url, retry_backoff_factor=0.01) as closed:
        with pytest.raises(UserError) as info:
            _run(_script(("calc", {"a": 1, "b": 2})), [calc_tool(closed)])
    assert isinstance(info.value.__cause__, FarameshConnectionError)
    assert calls == []

    with make_client(srv.url, retry_backoff_factor=0.01, fail_open=True) as open_:
        model = _script(("calc", {"a": 1, "b": 2}))
        _run(model, [calc_tool(open_)])
    assert calls == [("calc", 1, 2)]
    assert _tool_outputs(model)["call_1"] == "3"
