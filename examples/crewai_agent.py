#!/usr/bin/env python3
"""A CrewAI crew whose shell and HTTP tools are governed by Faramesh.

The tools are ordinary CrewAI tools wrapped in ``GovernedTool``; the crew is the usual one (an
agent, a task, ``Crew.kickoff``). Its LLM is a scripted ``BaseLLM`` that answers with function
calls the way an OpenAI-style model does, so this runs without network access or an API key;
give the agent a real ``llm`` instead and nothing else changes.

The script makes three tool calls with three decisions under examples/policy.yaml:

  1. http  GET <server>/health                     allowed: runs at once
  2. shell rm -rf /tmp/faramesh-example-scratch    denied: the agent reads "Faramesh denied
                                                   this call: <reason>", and CrewAI records a
                                                   failed tool call
  3. shell ls -la                                  needs approval: waits until you run the
                                                   printed `faramesh approve <id>` command

Run (see examples/README.md):
    faramesh serve --policy examples/policy.yaml        # terminal 1
    python examples/crewai_agent.py                     # terminal 2
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Tuple
from urllib.parse import urlparse

# CrewAI sends anonymous telemetry by default; this example keeps everything on this machine.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import httpx  # noqa: E402
from crewai import Agent, Crew, Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.tools import tool  # noqa: E402
from pydantic import Field  # noqa: E402

import faramesh  # noqa: E402
from faramesh.config import DEFAULT_BASE_URL  # noqa: E402
from faramesh.integrations.crewai import GovernedTool  # noqa: E402

AGENT_ID = "crewai-example-agent"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@tool("shell")
def shell(cmd: str) -> str:
    """Run a shell command on this machine and return what it printed."""
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


@tool("http")
def http(url: str) -> str:
    """HTTP GET a URL on this machine (localhost only); returns the status and body."""
    if urlparse(url).hostname not in LOCAL_HOSTS:
        return "refused: this tool only talks to localhost"
    response = httpx.get(url, timeout=10.0)
    return f"HTTP {response.status_code} {response.text}"


def shorten(text: str, lines: int = 8) -> str:
    parts = str(text).strip().splitlines()
    more = f"\n       ... ({len(parts) - lines} more lines)" if len(parts) > lines else ""
    return "\n       ".join(parts[:lines]) + more


class ScriptedLLM(BaseLLM):
    """Stands in for a real LLM: one function call per turn, then the final answer. It also
    prints what each tool call came back with, as the model reads it."""

    steps: List[Tuple[str, Dict[str, Any]]] = Field(default_factory=list)
    turn: int = 0

    def call(  # type: ignore[override]
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        **kwargs: Any,
    ) -> Any:
        last = messages[-1] if isinstance(messages, list) and messages else {}
        if isinstance(last, dict) and last.get("role") == "tool":
            print(f"    -> {shorten(str(last.get('content')))}")
        if not self.steps:
            return (
                "The Faramesh server is healthy. I was not allowed to delete the scratch "
                "directory, and after approval I listed the working directory."
            )
        self.turn += 1
        name, args = self.steps.pop(0)
        print(f"\nmodel calls {name}({args})", flush=True)
        function = {"name": name, "arguments": json.dumps(args)}
        return [{"id": f"call_{self.turn}", "type": "function", "function": function}]

    def supports_function_calling(self) -> bool:
        return True

    def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
        return 0  # a script spends no tokens (and CrewAI's estimate would log a warning per turn)


def approval_hint(action: Dict[str, Any]) -> None:
    """Called by GovernedTool when a call needs a human: say how to approve it."""
    base_url = faramesh.get_config().base_url
    url_flag = "" if base_url == DEFAULT_BASE_URL else f" --url {base_url}"
    print(f"    [faramesh] {action['tool']}/{action['operation']} needs approval: {action['reason']}")
    print("    [faramesh] approve it from another terminal with:")
    print(f"        faramesh approve {action['id']}{url_flag}")
    print(f"    [faramesh] (or deny it: faramesh deny {action['id']}{url_flag})")
    print("    [faramesh] waiting for a decision ...", flush=True)


def main() -> int:
    # FARAMESH_BASE_URL / FARAMESH_TOKEN are read from the environment when set.
    client = faramesh.configure(agent_id=AGENT_ID)
    print(f"CrewAI agent {AGENT_ID} governed by Faramesh at {client.base_url}")
    llm = ScriptedLLM(
        model="scripted",
        steps=[
            ("http", {"url": f"{client.base_url}/health"}),
            ("shell", {"cmd": "rm -rf /tmp/faramesh-example-scratch"}),
            ("shell", {"cmd": "ls -la"}),
        ],
    )
    operator = Agent(
        role="Operations agent",
        goal="Keep the service healthy and the machine tidy",
        backstory="You are careful and use the tools you are given.",
        llm=llm,
        tools=[
            GovernedTool(
                shell, agent_id=AGENT_ID, operation="run", on_pending=approval_hint, max_wait_time=600
            ),
            GovernedTool(
                http, agent_id=AGENT_ID, operation="get", on_pending=approval_hint, max_wait_time=600
            ),
        ],
    )
    task = Task(
        description="Check the server's health, clean up /tmp/faramesh-example-scratch, "
        "then show me what is in the working directory.",
        expected_output="A short report of what was done.",
        agent=operator,
    )
    output = Crew(agents=[operator], tasks=[task]).kickoff()
    print(f"\nmodel: {output.raw}")
    for failure in output.tasks_output[0].tool_failures:
        print(f"CrewAI recorded a failed tool call: {failure.summary()}")
    print(
        "\nEvery call is recorded: faramesh list"
        + ("" if client.base_url == DEFAULT_BASE_URL else f" --url {client.base_url}")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
