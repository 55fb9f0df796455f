#!/usr/bin/env python3
"""An OpenAI Agents SDK agent whose shell and HTTP tools are governed by Faramesh.

The tools are ordinary function tools declared with ``governed_function_tool`` instead of
``function_tool``; the agent runs with the SDK's own ``Runner.run``. The model is the SDK's
scripted test model (``agents.testing.ScriptedModel``), so this runs without network access or an
API key; pass ``model="gpt-4.1"`` (or any model) to the Agent instead and nothing else changes.

The script makes three tool calls with three decisions under examples/policy.yaml:

  1. http  GET <server>/health                     allowed: runs at once
  2. shell rm -rf /tmp/faramesh-example-scratch    denied: the model gets "Faramesh denied
                                                   this call: <reason>" as the tool's output
  3. shell ls -la                                  needs approval: waits until you run the
                                                   printed `faramesh approve <id>` command

Run (see examples/README.md):
    faramesh serve --policy examples/policy.yaml        # terminal 1
    python examples/openai_agents_agent.py              # terminal 2
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any, Dict
from urllib.parse import urlparse

import httpx
from agents import Agent, RunConfig, RunContextWrapper, RunHooks, Runner, Tool
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tool_context import ToolContext

import faramesh
from faramesh.config import DEFAULT_BASE_URL
from faramesh.integrations.openai_agents import governed_function_tool

AGENT_ID = "openai-agents-example-agent"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def approval_hint(action: Dict[str, Any]) -> None:
    """Called when a call needs a human: say how to approve it."""
    base_url = faramesh.get_config().base_url
    url_flag = "" if base_url == DEFAULT_BASE_URL else f" --url {base_url}"
    print(f"    [faramesh] {action['tool']}/{action['operation']} needs approval: {action['reason']}")
    print("    [faramesh] approve it from another terminal with:")
    print(f"        faramesh approve {action['id']}{url_flag}")
    print(f"    [faramesh] (or deny it: faramesh deny {action['id']}{url_flag})")
    print("    [faramesh] waiting for a decision ...", flush=True)


@governed_function_tool(agent_id=AGENT_ID, operation="run", on_pending=approval_hint, max_wait_time=600)
def shell(cmd: str) -> str:
    """Run a shell command on this machine and return what it printed."""
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


@governed_function_tool(agent_id=AGENT_ID, operation="get", on_pending=approval_hint, max_wait_time=600)
def http(url: str) -> str:
    """HTTP GET a URL on this machine (localhost only); returns the status and body."""
    if urlparse(url).hostname not in LOCAL_HOSTS:
        return "refused: this tool only talks to localhost"
    response = httpx.get(url, timeout=10.0)
    return f"HTTP {response.status_code} {response.text}"


def scripted_model(server_url: str) -> ScriptedModel:
    """Stands in for a real model: one tool call per turn, then the answer."""
    return ScriptedModel(
        [
            [function_call("http", {"url": f"{server_url}/health"}, call_id="call_1")],
            [function_call("shell", {"cmd": "rm -rf /tmp/faramesh-example-scratch"}, call_id="call_2")],
            [function_call("shell", {"cmd": "ls -la"}, call_id="call_3")],
            [
                assistant_message(
                    "The Faramesh server is healthy. I was not allowed to delete the scratch "
                    "directory, and after approval I listed the working directory."
                )
            ],
        ]
    )


def shorten(text: str, lines: int = 8) -> str:
    parts = str(text).strip().splitlines()
    more = f"\n       ... ({len(parts) - lines} more lines)" if len(parts) > lines else ""
    return "\n       ".join(parts[:lines]) + more


class PrintToolCalls(RunHooks[Any]):
    """Shows each tool call and what the model gets back, as the run goes."""

    async def on_tool_start(self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool) -> None:
        arguments = context.tool_arguments if isinstance(context, ToolContext) else ""
        print(f"\nmodel calls {tool.name}({arguments})", flush=True)

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool, result: Any
    ) -> None:
        print(f"    -> {shorten(str(result))}", flush=True)


def main() -> int:
    # FARAMESH_BASE_URL / FARAMESH_TOKEN are read from the environment when set.
    client = faramesh.configure(agent_id=AGENT_ID)
    print(f"OpenAI Agents SDK agent {AGENT_ID} governed by Faramesh at {client.base_url}")
    agent = Agent(
        name="ops",
        instructions="You are a careful operations agent. Use the tools.",
        tools=[shell, http],
        model=scripted_model(client.base_url),
    )
    result = asyncio.run(
        Runner.run(
            agent,
            "Check the server's health, clean up /tmp/faramesh-example-scratch, "
            "then show me what is in the working directory.",
            hooks=PrintToolCalls(),
            # The scripted model needs no OpenAI account; nothing is sent to OpenAI's tracing.
            run_config=RunConfig(tracing_disabled=True),
        )
    )
    print(f"\nmodel: {result.final_output}")
    print(
        "\nEvery call is recorded: faramesh list"
        + ("" if client.base_url == DEFAULT_BASE_URL else f" --url {client.base_url}")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
