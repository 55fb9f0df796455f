#!/usr/bin/env python3
"""A PydanticAI agent whose shell and HTTP tools are governed by Faramesh.

The tools are plain functions, given to the agent as ``toolsets=[governed_toolset([...])]``
instead of ``tools=[...]``. The model is PydanticAI's ``FunctionModel`` following a fixed script,
so this runs without network access or an API key; pass a real model (``"openai:gpt-4.1"``,
``"anthropic:claude-sonnet-4-5"``...) to the Agent instead and nothing else changes.

The script makes three tool calls with three decisions under examples/policy.yaml:

  1. http  GET <server>/health                     allowed: runs at once
  2. shell rm -rf /tmp/faramesh-example-scratch    denied: the tool call fails with "Faramesh
                                                   denied this call: <reason>" for the model
  3. shell ls -la                                  needs approval: waits until you run the
                                                   printed `faramesh approve <id>` command

Run (see examples/README.md):
    faramesh serve --policy examples/policy.yaml        # terminal 1
    python examples/pydantic_ai_agent.py                # terminal 2
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Dict, List
from urllib.parse import urlparse

import httpx
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import faramesh
from faramesh.config import DEFAULT_BASE_URL
from faramesh.integrations.pydantic_ai import governed_toolset

AGENT_ID = "pydantic-ai-example-agent"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def shell(cmd: str) -> str:
    """Run a shell command on this machine and return what it printed."""
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def http(url: str) -> str:
    """HTTP GET a URL on this machine (localhost only); returns the status and body."""
    if urlparse(url).hostname not in LOCAL_HOSTS:
        return "refused: this tool only talks to localhost"
    response = httpx.get(url, timeout=10.0)
    return f"HTTP {response.status_code} {response.text}"


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


def scripted_model(server_url: str) -> FunctionModel:
    """Stands in for a real model: one tool call per turn, then the answer. It also prints
    what each tool call came back with, as the model reads it."""
    script = iter(
        [
            ("http", {"url": f"{server_url}/health"}),
            ("shell", {"cmd": "rm -rf /tmp/faramesh-example-scratch"}),
            ("shell", {"cmd": "ls -la"}),
        ]
    )

    def respond(messages: List[ModelMessage], info: AgentInfo) -> ModelResponse:
        for part in messages[-1].parts:
            if isinstance(part, ToolReturnPart):
                print(f"    -> {shorten(part.model_response_str())}")
        step = next(script, None)
        if step is None:
            return ModelResponse(
                parts=[
                    TextPart(
                        "The Faramesh server is healthy. I was not allowed to delete the scratch "
                        "directory, and after approval I listed the working directory."
                    )
                ]
            )
        name, args = step
        print(f"\nmodel calls {name}({args})", flush=True)
        return ModelResponse(parts=[ToolCallPart(name, args)])

    return FunctionModel(respond)


def main() -> int:
    # FARAMESH_BASE_URL / FARAMESH_TOKEN are read from the environment when set.
    client = faramesh.configure(agent_id=AGENT_ID)
    print(f"PydanticAI agent {AGENT_ID} governed by Faramesh at {client.base_url}")
    agent = Agent(
        scripted_model(client.base_url),
        instructions="You are a careful operations agent. Use the tools.",
        toolsets=[
            governed_toolset(
                [shell, http],
                agent_id=AGENT_ID,
                operations={"shell": "run", "http": "get"},
                on_pending=approval_hint,
                max_wait_time=600,
            )
        ],
    )
    result = agent.run_sync(
        "Check the server's health, clean up /tmp/faramesh-example-scratch, "
        "then show me what is in the working directory."
    )
    print(f"\nmodel: {result.output}")
    print(
        "\nEvery call is recorded: faramesh list"
        + ("" if client.base_url == DEFAULT_BASE_URL else f" --url {client.base_url}")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
