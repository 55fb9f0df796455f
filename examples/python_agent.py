#!/usr/bin/env python3
"""A plain-Python agent loop whose tools are governed by Faramesh.

The agent has two tools, a shell and an HTTP client (localhost only), both wrapped with
``faramesh.govern``: every call is submitted to the Faramesh server first and runs only if the
policy (examples/policy.yaml) allows it, or once a human approves it. Its "planner" is a fixed
list of three steps standing in for a language model; they get three different decisions:

  1. GET <server>/health                  allowed: runs at once
  2. rm -rf /tmp/faramesh-example-scratch denied: never runs, the agent is told why
  3. ls -la                               needs approval: the agent waits until you run
                                          the printed `faramesh approve <id>` command

Run (see examples/README.md):
    faramesh serve --policy examples/policy.yaml        # terminal 1
    python examples/python_agent.py                     # terminal 2
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Callable, Dict, List, Tuple
from urllib.parse import urlparse

import httpx

import faramesh
from faramesh import DenyError, FarameshError, govern
from faramesh.config import DEFAULT_BASE_URL

AGENT_ID = "python-example-agent"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def approval_hint(action: Dict[str, Any]) -> None:
    """Called by `govern` when a call needs a human: say how to approve it."""
    base_url = faramesh.get_config().base_url
    url_flag = "" if base_url == DEFAULT_BASE_URL else f" --url {base_url}"
    print(f"    [faramesh] {action['tool']}/{action['operation']} needs approval: {action['reason']}")
    print("    [faramesh] approve it from another terminal with:")
    print(f"        faramesh approve {action['id']}{url_flag}")
    print(f"    [faramesh] (or deny it: faramesh deny {action['id']}{url_flag})")
    print("    [faramesh] waiting for a decision ...", flush=True)


@govern("shell", "run", agent_id=AGENT_ID, on_pending=approval_hint, timeout=600)
def shell(cmd: str) -> str:
    """Run a shell command and return what it printed."""
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"exit code {done.returncode}: {done.stderr.strip()}")
    return done.stdout


@govern("http", "get", agent_id=AGENT_ID, on_pending=approval_hint, timeout=600)
def http(url: str) -> str:
    """GET a URL on this machine and return the status and body."""
    if urlparse(url).hostname not in LOCAL_HOSTS:
        raise ValueError("this example only talks to localhost")
    response = httpx.get(url, timeout=10.0)
    return f"HTTP {response.status_code} {response.text}"


TOOLS: Dict[str, Callable[..., str]] = {"shell": shell, "http": http}


def plan(server_url: str) -> List[Tuple[str, str, Dict[str, Any]]]:
    """The steps a language model would choose: (thought, tool, arguments)."""
    return [
        ("Check that the Faramesh server is healthy", "http", {"url": f"{server_url}/health"}),
        ("Clean up the scratch directory", "shell", {"cmd": "rm -rf /tmp/faramesh-example-scratch"}),
        ("Show what is in the working directory", "shell", {"cmd": "ls -la"}),
    ]


def shorten(text: str, lines: int = 8) -> str:
    parts = text.strip().splitlines()
    more = f"\n    ... ({len(parts) - lines} more lines)" if len(parts) > lines else ""
    return "\n    ".join(parts[:lines]) + more


def main() -> int:
    # FARAMESH_BASE_URL / FARAMESH_TOKEN are read from the environment when set.
    client = faramesh.configure(agent_id=AGENT_ID)
    print(f"Agent {AGENT_ID} governed by Faramesh at {client.base_url}")
    observations: List[str] = []
    for step, (thought, tool, args) in enumerate(plan(client.base_url), start=1):
        print(f"\n[{step}] {thought}")
        print(f"    -> {tool}({', '.join(f'{k}={v!r}' for k, v in args.items())})")
        try:
            result = TOOLS[tool](**args)
        except DenyError as exc:
            observation = f"refused by Faramesh: {exc.reason}"
        except FarameshError as exc:
            print(f"    !! Faramesh error: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # the tool itself failed; the agent sees the error
            observation = f"tool error: {exc}"
        else:
            observation = f"ok: {shorten(result)}"
        print(f"    <- {observation}")
        observations.append(observation)
    print("\nDone. What the agent observed:")
    for step, observation in enumerate(observations, start=1):
        print(f"  {step}. {observation.splitlines()[0]}")
    print(
        "Every call is recorded: faramesh list"
        + ("" if client.base_url == DEFAULT_BASE_URL else f" --url {client.base_url}")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
