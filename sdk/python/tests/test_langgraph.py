"""``GovernedToolNode`` in real LangGraph graphs (agent node -> tools_condition -> tool node ->
agent) driven by a scripted chat model: allow, deny, approval, injected arguments, errors."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any, Callable, Dict, List, Sequence

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedState, ToolNode, tools_condition

from conftest import make_client
from faramesh import ExecutionGovernorClient, FarameshConnectionError
from faramesh.integrations.langgraph import DENIAL_PREFIX, GovernedTool, GovernedToolDenied, GovernedToolNode
from support import Server

calls: List[Any] = []


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


@tool
def calc(a: int, b: int) -> int:
    """Add two integers."""
    calls.append(("calc", a, b))
    return a + b


@tool
def shell(cmd: str) -> str:
    """Run a shell command."""
    calls.append(("shell", cmd))
    return "ran"


@tool
def deploy(service: str) -> str:
    """Deploy a service."""
    calls.append(("deploy", service))
    return f"{service} deployed"


class ScriptedChatModel(GenericFakeChatModel):
    """Answers with the given messages, in order, whatever tools are bound."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> "ScriptedChatModel":  # type: ignore[override]
        return self


def _model(*tool_calls: Any, final: str = "done") -> ScriptedChatModel:
    replies: List[BaseMessage] = [
        AIMessage(
            content="", tool_calls=[{"name": name, "args": args, "id": f"call_{n}", "type": "tool_call"}]
        )
        for n, (name, args) in enumerate(tool_calls, start=1)
    ]
    replies.append(AIMessage(content=final))
    return ScriptedChatModel(messages=iter(replies))


def _graph(model: ScriptedChatModel, tools: ToolNode) -> Any:
    def agent(state: MessagesState) -> Dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def _tool_messages(state: Dict[str, Any]) -> Dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in state["messages"] if isinstance(m, ToolMessage)}


def test_graph_with_allowed_denied_and_approved_calls(client: ExecutionGovernorClient, agent: str) -> None:
    pending: List[Dict[str, Any]] = []

    def approve_later(action: Dict[str, Any]) -> None:
        pending.append(action)
        threading.Thread(
            target=lambda: client.approve_action(action["id"], reason="go ahead"), daemon=True
        ).start()

    node = GovernedToolNode([calc, shell, deploy], client=client, on_pending=approve_later, max_wait_time=60)
    model = _model(
        ("calc", {"a": 2, "b": 3}), ("shell", {"cmd": "rm -rf /tmp/x"}), ("deploy", {"service": "api"})
    )
    state = _graph(model, node).invoke({"messages": [HumanMessage(content="go")]})

    assert state["messages"][-1].content == "done"
    assert calls == [("calc", 2, 3), ("deploy", "api")]
    assert len(pending) == 1 and pending[0]["tool"] == "deploy"
    answers = _tool_messages(state)
    assert {k: m.content for k, m in answers.items()} == {
        "call_1": "5",
        "call_2": f"{DENIAL_PREFIX}: Destructive shell commands are blocked",
        "call_3": "api deployed",
    }

    actions = list(reversed(client.list_actions(agent_id=agent)))
    assert [(a["tool"], a["operation"], a["params"], a["status"]) for a in actions] == [
        ("calc", "run", {"a": 2, "b": 3}, "succeeded"),
        ("shell", "run", {"cmd": "rm -rf /tmp/x"}, "denied"),
        ("deploy", "run", {"service": "api"}, "succeeded"),
    ]
    assert actions[0]["result"] == 5
    assert actions[2]["result"] == "api deployed" and actions[2]["reason"] == "go ahead"
    assert all(a["context"]["integration"] == "langgraph" for a in actions)


def test_async_graph(client: ExecutionGovernorClient, agent: str) -> None:
    node = GovernedToolNode([calc, shell], client=client)
    model = _model(("calc", {"a": 4, "b": 4}), ("shell", {"cmd": "rm -rf /tmp/y"}))
    state = asyncio.run(_graph(model, node).ainvoke({"messages": [HumanMessage(content="go")]}))
    assert {k: m.content for k, m in _tool_messages(state).items()} == {
        "call_1": "8",
        "call_2": f"{DENIAL_PREFIX}: Destructive shell commands are blocked",
    }
    assert sorted(a["status"] for a in client.list_actions(agent_id=agent)) == ["denied", "succeeded"]


def test_injected_arguments_reach_the_tool_but_not_the_params(
    client: ExecutionGovernorClient, agent: str
) -> None:
    @tool("calc")
    def count(
        a: int,
        state: Annotated[Dict[str, Any], InjectedState],
        tool_call_id: Annotated[str, InjectedToolCallId],
    ) -> str:
        """Add the number of messages so far to a."""
        calls.append(("count", a, tool_call_id))
        return f"{a + len(state['messages'])} ({tool_call_id})"

    node = GovernedToolNode([count], client=client)
    state = _graph(_model(("calc", {"a": 10})), node).invoke({"messages": [HumanMessage(content="go")]})

    assert _tool_messages(state)["call_1"].content == "12 (call_1)"
    assert calls == [("count", 10, "call_1")]
    [action] = client.list_actions(agent_id=agent)
    assert action["params"] == {"a": 10}
    assert (action["status"], action["result"]) == ("succeeded", "12 (call_1)")


def test_plain_functions_and_governed_tools_are_accepted(client: ExecutionGovernorClient, agent: str) -> None:
    def http(url: str) -> str:
        """Fetch a URL."""
        calls.append(("http", url))
        return f"fetched {url}"

    already = GovernedTool(calc, client=client, operation="add")
    node = GovernedToolNode(
        [http, already, shell], client=client, operation="exec", operations={"http": "get"}
    )
    assert node.tools_by_name["calc"] is already
    assert isinstance(node.tools_by_name["http"], GovernedTool)

    model = _model(
        ("http", {"url": "http://127.0.0.1/health"}),
        ("calc", {"a": 1, "b": 1}),
        ("shell", {"cmd": "rm -rf /"}),
    )
    _graph(model, node).invoke({"messages": [HumanMessage(content="go")]})
    actions = list(reversed(client.list_actions(agent_id=agent)))
    assert [(a["tool"], a["operation"], a["status"]) for a in actions] == [
        ("http", "get", "succeeded"),
        ("calc", "add", "succeeded"),
        ("shell", "exec", "denied"),
    ]


def test_raise_on_deny_follows_the_nodes_error_handling(client: ExecutionGovernorClient) -> None:
    strict = GovernedToolNode([shell], client=client, raise_on_deny=True)
    with pytest.raises(GovernedToolDenied) as info:
        _graph(_model(("shell", {"cmd": "rm -rf /tmp/x"})), strict).invoke(
            {"messages": [HumanMessage(content="go")]}
        )
    assert str(info.value) == f"{DENIAL_PREFIX}: Destructive shell commands are blocked"

    handled = GovernedToolNode([shell], client=client, raise_on_deny=True, handle_tool_errors=True)
    graph = _graph(_model(("shell", {"cmd": "rm -rf /tmp/x"})), handled)
    state = graph.invoke({"messages": [HumanMessage(content="go")]})
    answer = _tool_messages(state)["call_1"]
    assert (
        answer.status == "error"
        and f"{DENIAL_PREFIX}: Destructive shell commands are blocked" in answer.content
    )
    assert calls == []


def test_unreachable_server_fails_closed_unless_configured_to_fail_open(
    server_factory: Callable[..., Server],
) -> None:
    srv = server_factory("stopped")
    srv.stop()
    with make_client(srv.url, retry_backoff_factor=0.01) as c:
        node = GovernedToolNode([calc], client=c)
        with pytest.raises(FarameshConnectionError):
            _graph(_model(("calc", {"a": 1, "b": 2})), node).invoke(
                {"messages": [HumanMessage(content="go")]}
            )
    assert calls == []

    with make_client(srv.url, retry_backoff_factor=0.01, fail_open=True) as c:
        node = GovernedToolNode([calc], client=c)
        state = _graph(_model(("calc", {"a": 1, "b": 2})), node).invoke(
            {"messages": [HumanMessage(content="go")]}
        )
    assert calls == [("calc", 1, 2)]
    assert _tool_messages(state)["call_1"].content == "3"
