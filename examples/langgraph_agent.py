#!/usr/bin/env python3
"""A LangGraph agent whose shell and HTTP tools are governed by Faramesh.

The graph is the usual tool-calling loop: an ``agent`` node asks the chat model, LangGraph's
``tools_condition`` routes tool calls to a ``tools`` node, and the tools' answers go back to the
model. The tools node is a ``GovernedToolNode`` in place of LangGraph's ``ToolNode``. The model is
a scripted fake chat model from langchain-core, so this runs without network access or an API
key; swap in any real chat model that supports ``bind_tools`` and nothing else changes.

The script makes three tool calls with three decisions under examples/policy.yaml:

  1. http  GET <server>/health                     allowed: runs at once
  2. shell rm -rf /tmp/faramesh-example-scratch    denied: the model gets "Faramesh denied
                                                   this call: <reason>" as the tool's answer
  3. shell ls -la                                  needs approval: waits until you run the
                                                   printed `faramesh approve <id>` command

Run (see examples/README.md):
    faramesh serve --policy examples/policy.yaml        # terminal 1
    python examples/langgraph_agent.py                  # terminal 2
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Dict, Sequence
from urllib.parse import urlparse

import httpx
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

import faramesh
from faramesh.config import DEFAULT_BASE_URL
from faramesh.integrations.langgraph import GovernedToolNode

AGENT_ID = "langgraph-example-agent"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@tool
def shell(cmd: str) -> str:
    """Run a shell command on this machine and return what it printed."""
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


@tool
def http(url: str) -> str:
    """HTTP GET a URL on this machine (localhost only); returns the status and body."""
    if urlparse(url).hostname not in LOCAL_HOSTS:
        return "refused: this tool only talks to localhost"
    response = httpx.get(url, timeout=10.0)
    return f"HTTP {response.status_code} {response.text}"


class ScriptedChatModel(GenericFakeChatModel):
    """Stands in for a real chat model: answers with the given messages, in order."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> "ScriptedChatModel":  # type: ignore[override]
        return self


def scripted_model(server_url: str) -> ScriptedChatModel:
    def call(name: str, args: Dict[str, Any], n: int) -> AIMessage:
        return AIMessage(
            content="", tool_calls=[{"name": name, "args": args, "id": f"call_{n}", "type": "tool_call"}]
        )

    return ScriptedChatModel(
        messages=iter(
            [
                call("http", {"url": f"{server_url}/health"}, 1),
                call("shell", {"cmd": "rm -rf /tmp/faramesh-example-scratch"}, 2),
                call("shell", {"cmd": "ls -la"}, 3),
                AIMessage(
                    content="The Faramesh server is healthy. I was not allowed to delete the scratch "
                    "directory, and after approval I listed the working directory."
                ),
            ]
        )
    )


def approval_hint(action: Dict[str, Any]) -> None:
    """Called when a call needs a human: say how to approve it."""
    base_url = faramesh.get_config().base_url
    url_flag = "" if base_url == DEFAULT_BASE_URL else f" --url {base_url}"
    print(f"    [faramesh] {action['tool']}/{action['operation']} needs approval: {action['reason']}")
    print("    [faramesh] approve it from another terminal with:")
    print(f"        faramesh approve {action['id']}{url_flag}")
    print(f"    [faramesh] (or deny it: faramesh deny {action['id']}{url_flag})")
    print("    [faramesh] waiting for a decision ...", flush=True)


def shorten(text: str, lines: int = 8) -> str:
    parts = str(text).strip().splitlines()
    more = f"\n       ... ({len(parts) - lines} more lines)" if len(parts) > lines else ""
    return "\n       ".join(parts[:lines]) + more


def build_graph(server_url: str) -> Any:
    tools = [shell, http]
    model = scripted_model(server_url).bind_tools(tools)

    def agent(state: MessagesState) -> Dict[str, Any]:
        last = state["messages"][-1]
        if isinstance(last, ToolMessage):
            print(f"    -> {shorten(str(last.content))}")
        reply = model.invoke(state["messages"])
        for call in getattr(reply, "tool_calls", []):
            print(f"\nmodel calls {call['name']}({call['args']})", flush=True)
        return {"messages": [reply]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node(
        "tools",
        GovernedToolNode(
            tools,
            agent_id=AGENT_ID,
            operations={"shell": "run", "http": "get"},
            on_pending=approval_hint,
            max_wait_time=600,
        ),
    )
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def main() -> int:
    # FARAMESH_BASE_URL / FARAMESH_TOKEN are read from the environment when set.
    client = faramesh.configure(agent_id=AGENT_ID)
    print(f"LangGraph agent {AGENT_ID} governed by Faramesh at {client.base_url}")
    state = build_graph(client.base_url).invoke(
        {
            "messages": [
                SystemMessage(content="You are a careful operations agent. Use the tools."),
                HumanMessage(
                    content="Check the server's health, clean up /tmp/faramesh-example-scratch, "
                    "then show me what is in the working directory."
                ),
            ]
        }
    )
    print(f"\nmodel: {state['messages'][-1].content}")
    print(
        "\nEvery call is recorded: faramesh list"
        + ("" if client.base_url == DEFAULT_BASE_URL else f" --url {client.base_url}")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
