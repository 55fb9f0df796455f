"""The examples in examples/ run end to end; the pending call is approved with the CLI."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, List

import pytest

from conftest import make_client
from support import REPO, WAIT_S, Server, clean_env, faramesh_bin

EXAMPLES = REPO / "examples"
POLICY = EXAMPLES / "policy.yaml"
APPROVE = re.compile(r"faramesh approve ([0-9a-f-]{36})")


def test_example_policy_is_valid_and_its_cases_pass() -> None:
    validate = subprocess.run(
        [faramesh_bin(), "policy", "validate", str(POLICY), "--no-color"], capture_output=True, text=True
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    cases = subprocess.run(
        [faramesh_bin(), "policy", "test", str(POLICY), str(EXAMPLES / "policy.cases.yaml"), "--no-color"],
        capture_output=True,
        text=True,
    )
    assert cases.returncode == 0, cases.stdout + cases.stderr


def _run_example(script: Path, srv: Server, workdir: Path) -> List[str]:
    """Run an example; when it prints the approve command, run that command with the CLI."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "visible-to-ls.txt").write_text("hello\n")
    proc = subprocess.Popen(
        [sys.executable, "-u", str(script)],
        cwd=workdir,
        env=clean_env({"FARAMESH_BASE_URL": srv.url}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: "queue.Queue[str | None]" = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    output: List[str] = []
    approved = False
    try:
        while True:
            line = lines.get(timeout=WAIT_S)
            if line is None:
                break
            output.append(line)
            match = APPROVE.search(line)
            if match and not approved:
                srv.cli("approve", match.group(1), "--reason", "approved by the example test")
                approved = True
        assert proc.wait(timeout=WAIT_S) == 0, "\n".join(output)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert approved, "the example never printed a `faramesh approve <id>` command:\n" + "\n".join(output)
    return output


@pytest.mark.parametrize(
    "script, agent, denial",
    [
        (
            "python_agent.py",
            "python-example-agent",
            "refused by Faramesh: Destructive shell commands are blocked",
        ),
        (
            "langchain_agent.py",
            "langchain-example-agent",
            "Faramesh denied this call: Destructive shell commands are blocked",
        ),
    ],
)
def test_example_runs_allowed_denied_and_approved_calls(
    script: str, agent: str, denial: str, server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    srv = server_factory("examples", policy=POLICY)
    output = "\n".join(_run_example(EXAMPLES / script, srv, tmp_path / "cwd"))

    assert 'HTTP 200 {"status":"healthy"}' in output
    assert denial in output
    assert "visible-to-ls.txt" in output  # `ls -la` ran after the approval

    with make_client(srv.url) as c:
        actions = list(reversed(c.list_actions(agent_id=agent)))
    summary = [(a["tool"], a["status"]) for a in actions]
    assert summary == [("http", "succeeded"), ("shell", "denied"), ("shell", "succeeded")]
    assert actions[2]["params"] == {"cmd": "ls -la"}
    assert actions[2]["reason"] == "approved by the example test"
