"""Wire-compatibility test: the published Python SDK (`faramesh-sdk` on PyPI, import name
`faramesh`) driven against the real Rust server (`faramesh serve`).

Run it with `tests/compat/run`, which installs the pinned SDK into target/compat-venv, builds
the server and passes the binary in FARAMESH_BIN.

Every SDK call below was taken from the installed SDK's own source (faramesh/client.py,
faramesh/gate.py, faramesh/govern.py, faramesh/governed_tool.py, faramesh/transport.py of
faramesh-sdk 0.3.3); nothing is re-implemented here. A test marked xfail(strict=True) documents
an SDK function that cannot work against this server, with the exact request and response.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

import faramesh
from faramesh import (
    DeferredError,
    DenyError,
    ExecutionGovernorClient,
    FarameshAuthError,
    FarameshBatchError,
    FarameshDeniedError,
    FarameshError,
    FarameshNotFoundError,
    FarameshPolicyError,
    FarameshTimeoutError,
    FarameshValidationError,
    GateDecision,
)

# Generous upper bounds for things that normally take milliseconds. They only keep a broken
# server from hanging the suite; no assertion depends on them.
STARTUP_TIMEOUT_S = 60.0
WAIT_TIMEOUT_S = 60.0
POLL_S = 0.05  # interval handed to the SDK's own polling helpers

POLICY = """\
rules:
  - match: {tool: "http", op: "*"}
    allow: true
    description: "Allow HTTP requests"
    risk: "low"
  - match: {tool: "shell", op: "*"}
    require_approval: true
    description: "Shell commands require approval"
    risk: "medium"
  - match: {tool: "stripe", op: "refund"}
    deny: true
    description: "Refunds are blocked in this test"
    risk: "high"
"""

ADMIN_TOKEN = "compat-admin-secret"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
LISTENING_RE = re.compile(r"listening on (http://\S+)")


# --------------------------------------------------------------------------- server fixtures


class Server:
    """One `faramesh serve` process on a free port, its stderr drained by a thread."""

    def __init__(self, binary: str, workdir: Path, extra_env: dict[str, str]):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        policy = workdir / "policy.yaml"
        policy.write_text(POLICY)
        env = {
            k: v
            for k, v in os.environ.items()
            if not (k.startswith("FARAMESH_") or k.startswith("FARA_"))
        }
        env.update({"RUST_LOG": "info", "FARAMESH_EXECUTORS": "shell"})
        env.update(extra_env)
        self.log: collections.deque[str] = collections.deque(maxlen=400)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [
                binary,
                "serve",
                "--port",
                "0",
                "--db",
                str(workdir / "actions.db"),
                "--policy",
                str(policy),
                "--profile",
                str(workdir / "no-such-profile.yaml"),
            ],
            cwd=workdir,  # keeps a developer's .env out of the test
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        threading.Thread(target=self._drain, daemon=True).start()
        self.url = self._wait_for_url()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            line = ANSI_RE.sub("", line.rstrip("\n"))
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                pytest.fail(
                    f"faramesh serve printed no 'listening on' line within "
                    f"{STARTUP_TIMEOUT_S}s:\n" + "\n".join(self.log)
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait()
                pytest.fail(
                    f"faramesh serve exited with code {code} before listening:\n"
                    + "\n".join(self.log)
                )
            match = LISTENING_RE.search(line)
            if match:
                return match.group(1).rstrip("/")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _binary() -> str:
    binary = os.environ.get("FARAMESH_BIN")
    if not binary:
        pytest.fail("FARAMESH_BIN is not set: run tests/compat/run (it builds the server)")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"FARAMESH_BIN={binary} is not an executable file")
    return binary


def _start(request, tmp_path_factory, name: str, extra_env: dict[str, str]) -> Server:
    server = Server(_binary(), tmp_path_factory.mktemp(name), extra_env)

    def finish() -> None:
        server.stop()
        if request.session.testsfailed:
            print(f"\n--- last lines of the {name} server's log ---")
            print("\n".join(server.log))

    request.addfinalizer(finish)
    return server


@pytest.fixture(scope="session", autouse=True)
def _sdk_environment():
    # The SDK reads these at configure() time; a developer's own settings must not leak in.
    for var in ("FARAMESH_TOKEN", "FARA_AUTH_TOKEN", "FARAMESH_BASE_URL", "FARA_API_BASE",
                "FARAMESH_REMOTE_URL", "FARAMESH_RETRIES", "FARAMESH_RETRY_BACKOFF",
                "FARAMESH_AUTOLOAD"):
        os.environ.pop(var, None)
    yield


@pytest.fixture(scope="session")
def server(request, tmp_path_factory) -> Server:
    """Open server (no token), built-in shell executor enabled."""
    return _start(request, tmp_path_factory, "open", {})


@pytest.fixture(scope="session")
def auth_server(request, tmp_path_factory) -> Server:
    """Server with an admin token: every /v1 request needs `Authorization: Bearer`."""
    return _start(request, tmp_path_factory, "auth", {"FARAMESH_TOKEN": ADMIN_TOKEN})


@pytest.fixture(autouse=True)
def sdk(server):
    """Point the SDK's global client at the open server before every test."""
    faramesh.configure(base_url=server.url, timeout=30)
    yield faramesh
    faramesh.configure(base_url=server.url, timeout=30)


@pytest.fixture
def agent() -> str:
    """A fresh agent id per test, so list filters see only that test's actions."""
    return f"compat-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- helpers


def payload(agent_id, tool, operation, params, context=None) -> dict:
    return {
        "agent_id": agent_id,
        "tool": tool,
        "operation": operation,
        "params": params,
        "context": context or {},
    }


def wait_until(fetch, predicate, what: str):
    """Poll `fetch()` until `predicate(value)` holds; bounded by WAIT_TIMEOUT_S."""
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while True:
        value = fetch()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; last value: {value!r}")
        time.sleep(POLL_S)


def pending_shell(agent_id: str, cmd: str, context=None) -> dict:
    action = faramesh.submit_action(agent_id, "shell", "run", {"cmd": cmd}, context=context)
    assert action["status"] == "pending_approval", action
    return action


class _StopStream(Exception):
    """Raised from an SSE callback to leave faramesh.stream_events()."""


def stream_in_thread(on_event, **kwargs):
    """Run faramesh.stream_events in a daemon thread; `on_event` raises _StopStream to end it.

    Returns (thread, errors): errors gets any exception other than _StopStream.
    """
    errors: list[BaseException] = []

    def run():
        try:
            faramesh.stream_events(on_event, timeout=int(WAIT_TIMEOUT_S), **kwargs)
            errors.append(AssertionError("stream_events returned without the expected event"))
        except _StopStream:
            pass
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def join(thread, errors, what: str) -> None:
    thread.join(WAIT_TIMEOUT_S)
    assert not thread.is_alive(), f"gave up waiting for {what}"
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------- submit / get


def test_sdk_package_is_the_published_one():
    from importlib.metadata import version

    assert version("faramesh-sdk") == "0.3.3"
    for name in ("configure", "submit_action", "get_action", "list_actions", "approve_action",
                 "deny_action", "start_action", "replay_action", "wait_for_completion",
                 "submit_and_wait", "block_until_approved", "gate_decide", "replay_decision",
                 "stream_events", "tail_events", "govern"):
        assert callable(getattr(faramesh, name)), name


def test_submit_allowed_action(agent):
    params = {"url": "https://example.com/a", "headers": {"x": "1"}}
    action = faramesh.submit_action(agent, "http", "get", params, context={"run": 7})

    assert UUID_RE.match(action["id"])
    assert action["agent_id"] == agent
    assert (action["tool"], action["operation"]) == ("http", "get")
    assert action["params"] == params
    assert action["context"] == {"run": 7}
    assert action["status"] == "allowed"
    assert action["decision"] == "allow"
    assert action["reason"] == "Allow HTTP requests"
    assert action["risk_level"] == "low"
    assert action["approval_token"] is None
    assert action["outcome"] == "EXECUTE"
    assert action["reason_code"] == "POLICY_ALLOW"
    assert action["policy_version"]
    assert action["created_at"].endswith("Z") and action["updated_at"].endswith("Z")
    # The SDK's client-side canonical hash matches the server's request_hash.
    expected = payload(agent, "http", "get", params, {"run": 7})
    assert faramesh.compute_request_hash(expected) == action["request_hash"]
    assert faramesh.verify_request_hash(expected, action["request_hash"])
    assert HEX64_RE.match(action["provenance_id"])


def test_get_action(agent):
    submitted = faramesh.submit_action(agent, "http", "get", {"url": "https://example.com/g"})
    fetched = faramesh.get_action(submitted["id"])
    for key in ("id", "agent_id", "tool", "operation", "params", "context", "status",
                "decision", "reason", "risk_level", "request_hash", "created_at"):
        assert fetched[key] == submitted[key], key


def test_get_unknown_action_raises_not_found():
    with pytest.raises(FarameshNotFoundError):
        faramesh.get_action(str(uuid.uuid4()))


def test_submit_denied_by_rule_raises_policy_error(agent):
    with pytest.raises(FarameshPolicyError, match="Refunds are blocked in this test"):
        faramesh.submit_action(agent, "stripe", "refund", {"amount": 5000})
    # The denial is still recorded, and the SDK can read it back.
    [denied] = faramesh.list_actions(agent_id=agent)
    assert denied["status"] == "denied"
    assert denied["decision"] == "deny"
    assert denied["reason"] == "Refunds are blocked in this test"
    assert denied["reason_code"] == "POLICY_DENY"
    assert denied["outcome"] == "HALT"
    assert denied["approval_token"] is None


def test_submit_denied_by_default_raises_policy_error(agent):
    with pytest.raises(FarameshPolicyError, match=r"No rule matched \(deny by default\)"):
        faramesh.submit_action(agent, "database", "drop", {"table": "users"})
    [denied] = faramesh.list_actions(agent_id=agent, status="denied")
    assert denied["reason_code"] == "DEFAULT_DENY_NO_MATCH"


def test_submit_invalid_action_raises_validation_error(agent):
    with pytest.raises(FarameshValidationError, match="agent_id"):
        faramesh.submit_action("   ", "http", "get", {"url": "https://example.com"})


# --------------------------------------------------------------------------- list


def test_list_actions_filters_and_pages(agent):
    first = faramesh.submit_action(agent, "http", "get", {"n": 1})
    second = pending_shell(agent, "true")
    third = faramesh.submit_action(agent, "http", "post", {"n": 3})
    with pytest.raises(FarameshPolicyError):
        faramesh.submit_action(agent, "stripe", "refund", {"n": 4})

    listed = faramesh.list_actions(agent_id=agent)
    assert len(listed) == 4
    assert [a["id"] for a in listed[1:]] == [third["id"], second["id"], first["id"]]
    assert listed[0]["status"] == "denied"  # newest first

    assert [a["id"] for a in faramesh.list_actions(agent_id=agent, tool="http")] == [
        third["id"], first["id"]]
    assert [a["id"] for a in faramesh.list_actions(agent_id=agent, status="pending_approval")] \
        == [second["id"]]
    assert [a["id"] for a in faramesh.list_actions(agent_id=agent, limit=2, offset=1)] == [
        third["id"], second["id"]]

    everyone = faramesh.list_actions(limit=1000)
    assert {first["id"], second["id"], third["id"]} <= {a["id"] for a in everyone}


# --------------------------------------------------------------------------- approve / deny


def test_pending_action_carries_decision_fields(agent):
    action = pending_shell(agent, "echo hi")
    assert action["decision"] == "require_approval"
    assert action["reason"] == "Shell commands require approval"
    assert action["risk_level"] == "medium"
    assert action["outcome"] == "ABSTAIN"
    assert action["reason_code"] == "POLICY_REQUIRE_APPROVAL"
    assert isinstance(action["approval_token"], str) and action["approval_token"]


def test_approve_fetches_the_token_itself(agent):
    action = pending_shell(agent, "echo hi")
    approved = faramesh.approve_action(action["id"], reason="looks safe")
    assert approved["id"] == action["id"]
    assert approved["status"] == "approved"
    assert approved["decision"] == "allow"
    assert approved["reason"] == "looks safe"
    assert approved["approval_token"] is None
    assert faramesh.get_action(action["id"])["status"] == "approved"


def test_approve_with_explicit_token_and_allow_alias(agent):
    action = pending_shell(agent, "echo hi")
    approved = faramesh.allow(action["id"], token=action["approval_token"])
    assert approved["status"] == "approved"
    assert approved["decision"] == "allow"


def test_approve_with_wrong_token_raises_auth_error(agent):
    action = pending_shell(agent, "echo hi")
    with pytest.raises(FarameshAuthError):
        faramesh.approve_action(action["id"], token="not-the-token")
    assert faramesh.get_action(action["id"])["status"] == "pending_approval"


def test_deny_action(agent):
    action = pending_shell(agent, "rm -rf /tmp/nothing-here")
    denied = faramesh.deny_action(action["id"], reason="too risky")
    assert denied["status"] == "denied"
    assert denied["decision"] == "deny"
    assert denied["reason"] == "too risky"
    assert denied["approval_token"] is None

    # The SDK refuses a second decision itself...
    with pytest.raises(FarameshError, match="not pending approval"):
        faramesh.approve_action(action["id"])
    # ...and with the stale token the server's 409 surfaces as a FarameshError.
    with pytest.raises(FarameshError, match="409"):
        faramesh.approve_action(action["id"], token=action["approval_token"])
    assert faramesh.get_action(action["id"])["status"] == "denied"

    with pytest.raises(FarameshDeniedError, match="too risky"):
        faramesh.block_until_approved(action["id"], poll_interval=POLL_S, timeout=WAIT_TIMEOUT_S)


def test_deny_alias_fetches_the_token_itself(agent):
    action = pending_shell(agent, "echo hi")
    assert faramesh.deny(action["id"])["status"] == "denied"


def test_block_until_approved_returns_approved_action(agent):
    action = pending_shell(agent, "echo hi")
    faramesh.approve_action(action["id"])
    result = faramesh.block_until_approved(action["id"], poll_interval=POLL_S,
                                           timeout=WAIT_TIMEOUT_S)
    assert result["status"] == "approved"


# --------------------------------------------------------------------------- start / wait


def test_start_and_wait_for_completion(agent):
    action = pending_shell(agent, "printf 'compat-%s' ok")
    faramesh.approve_action(action["id"])
    started = faramesh.start_action(action["id"])
    assert started["id"] == action["id"]
    assert started["status"] in ("executing", "succeeded")

    final = faramesh.wait_for_completion(action["id"], poll_interval=POLL_S,
                                         timeout=WAIT_TIMEOUT_S)
    assert final["status"] == "succeeded"
    assert final["result"]["exit_code"] == 0
    assert final["result"]["stdout"] == "compat-ok"


def test_failed_command_is_reported_failed(agent):
    action = pending_shell(agent, "echo broken >&2; exit 3")
    faramesh.approve_action(action["id"])
    faramesh.start_action(action["id"])
    final = faramesh.wait_for_completion(action["id"], poll_interval=POLL_S,
                                         timeout=WAIT_TIMEOUT_S)
    assert final["status"] == "failed"
    assert final["result"]["exit_code"] == 3
    assert "broken" in final["result"]["stderr"]


def test_start_of_unapproved_action_is_refused(agent):
    action = pending_shell(agent, "echo never")
    with pytest.raises(FarameshError, match="409"):
        faramesh.start_action(action["id"])
    assert faramesh.get_action(action["id"])["status"] == "pending_approval"


def test_start_allowed_action_without_executor_is_executing(agent):
    # No built-in executor is enabled for `http` here, so the agent would report the result.
    action = faramesh.submit_action(agent, "http", "get", {"url": "https://example.com/s"})
    started = faramesh.start_action(action["id"])
    assert started["status"] == "executing"


def test_submit_and_wait_with_human_approval(agent):
    """submit_and_wait(require_approval=True, auto_start=True) while a 'human' approves.

    The approver reacts to the live SSE stream instead of polling.
    """
    approved_ids: list[str] = []

    def approver(event):
        data = event.get("data", {})
        if (event.get("type") == "action.created" and data.get("agent_id") == agent
                and data.get("status") == "pending_approval"):
            faramesh.approve_action(data["id"], reason="approved by the test's approver")
            approved_ids.append(data["id"])
            raise _StopStream

    thread, errors = stream_in_thread(approver, event_types=["action.created"])
    final = faramesh.submit_and_wait(agent, "shell", "run", {"cmd": "printf waited"},
                                     require_approval=True, auto_start=True,
                                     timeout=int(WAIT_TIMEOUT_S), poll_interval=POLL_S)
    join(thread, errors, "the approver thread")
    assert final["status"] == "succeeded"
    assert final["result"]["stdout"] == "waited"
    assert approved_ids == [final["id"]]


def test_submit_and_wait_raises_on_policy_denial(agent):
    with pytest.raises(FarameshPolicyError):
        faramesh.submit_and_wait(agent, "stripe", "refund", {"amount": 1}, auto_start=True)


def test_executor_timeout_is_reported_and_sdk_wait_does_not_treat_it_as_final(agent):
    """The server (like the seed) has a terminal `timeout` status; the SDK's
    wait_for_completion only knows succeeded/failed/denied and so raises its own
    FarameshTimeoutError naming the status. SDK limitation, not a server deviation."""
    action = pending_shell(agent, "sleep 30", context={"timeout": 1})
    faramesh.approve_action(action["id"])
    faramesh.start_action(action["id"])
    final = wait_until(lambda: faramesh.get_action(action["id"]),
                       lambda a: a["status"] not in ("approved", "executing"),
                       "the executor timeout")
    assert final["status"] == "timeout"
    with pytest.raises(FarameshTimeoutError, match="Current status: timeout"):
        faramesh.wait_for_completion(action["id"], poll_interval=POLL_S, timeout=0)


# --------------------------------------------------------------------------- replay


def test_replay_submits_a_copy(agent):
    params = {"cmd": "printf replayed"}
    original = pending_shell(agent, params["cmd"])
    faramesh.approve_action(original["id"])
    faramesh.start_action(original["id"])
    assert faramesh.wait_for_completion(original["id"], poll_interval=POLL_S,
                                        timeout=WAIT_TIMEOUT_S)["status"] == "succeeded"

    copy = faramesh.replay_action(original["id"])
    assert copy["id"] != original["id"]
    assert (copy["agent_id"], copy["tool"], copy["operation"]) == (agent, "shell", "run")
    assert copy["params"] == params
    assert copy["context"] == {"replayed_from": original["id"], "replay": True}
    assert copy["status"] == "pending_approval"  # the copy is decided afresh
    assert {a["id"] for a in faramesh.list_actions(agent_id=agent)} == {original["id"],
                                                                         copy["id"]}


def test_replay_of_allowed_action(agent):
    original = faramesh.submit_action(agent, "http", "get", {"url": "https://example.com/r"},
                                      context={"trace": "t1"})
    copy = faramesh.replay_action(original["id"])
    assert copy["status"] == "allowed"
    assert copy["context"] == {"trace": "t1", "replayed_from": original["id"], "replay": True}


def test_replay_of_pending_action_is_refused_by_sdk(agent):
    original = pending_shell(agent, "echo hi")
    with pytest.raises(FarameshError, match="Cannot replay"):
        faramesh.replay_action(original["id"])


# --------------------------------------------------------------------------- batch / apply / decorator


def test_submit_actions_and_bulk(agent):
    specs = [
        {"agent_id": agent, "tool": "http", "operation": "get", "params": {"i": 1}},
        {"agent_id": agent, "tool": "stripe", "operation": "refund", "params": {"i": 2}},
    ]
    results = faramesh.submit_actions(specs)
    assert results[0]["status"] == "allowed"
    assert "denied" in results[1]["error"]

    with pytest.raises(FarameshBatchError) as info:
        faramesh.submit_actions_bulk(specs, raise_on_error=True)
    assert [a["status"] for a in info.value.successes] == ["allowed"]
    assert [e["index"] for e in info.value.errors] == [1]
    assert len(faramesh.list_actions(agent_id=agent)) == 4


def test_apply_json_file(agent, tmp_path):
    spec = payload(agent, "http", "get", {"url": "https://example.com/apply"}, {"from": "file"})
    path = tmp_path / "action.json"
    path.write_text(json.dumps(spec))
    action = faramesh.apply(path)
    assert action["status"] == "allowed"
    assert action["params"] == spec["params"]
    assert action["context"] == spec["context"]


def test_governed_tool_decorator(agent):
    @faramesh.governed_tool(agent_id=agent, tool="http", operation="get")
    def fetch(url, *, verbose=False):
        raise AssertionError("the decorator never runs the body")

    action = fetch("https://example.com/d", verbose=True)
    assert action["status"] == "allowed"
    assert action["params"] == {"args": ["'https://example.com/d'"], "kwargs": {"verbose": True}}

    @faramesh.governed_tool(agent_id=agent, tool="stripe", operation="refund")
    def refund(amount):
        raise AssertionError("never runs")

    with pytest.raises(FarameshPolicyError):
        refund(10)


def test_legacy_class_api(agent, server):
    client = ExecutionGovernorClient(faramesh.ClientConfig(base_url=server.url, agent_id=agent))
    action = client.submit_action("shell", "run", {"cmd": "printf legacy"})
    assert action["agent_id"] == agent and action["status"] == "pending_approval"
    assert client.get_action(action["id"])["id"] == action["id"]
    assert [a["id"] for a in client.list_actions(agent_id=agent)] == [action["id"]]
    assert client.approve_action(action["id"])["status"] == "approved"
    client.start_action(action["id"])
    final = client.wait_for_completion(action["id"], poll_interval=POLL_S,
                                       timeout=WAIT_TIMEOUT_S)
    assert final["status"] == "succeeded" and final["result"]["stdout"] == "legacy"
    assert client.replay_action(action["id"])["context"]["replayed_from"] == action["id"]

    other = client.submit_action("shell", "run", {"cmd": "true"})
    assert client.deny_action(other["id"], reason="no")["status"] == "denied"


# --------------------------------------------------------------------------- gate


def test_gate_decide_outcomes(agent):
    allow = faramesh.gate_decide(agent, "http", "get", {"url": "https://example.com"})
    assert isinstance(allow, GateDecision)
    assert allow.outcome == "EXECUTE"
    assert allow.reason_code == "POLICY_ALLOW"
    assert allow.reason == "Allow HTTP requests"
    assert allow.request_hash == faramesh.compute_request_hash(
        payload(agent, "http", "get", {"url": "https://example.com"}))
    assert HEX64_RE.match(allow.policy_hash)
    assert allow.policy_version and allow.runtime_version
    assert HEX64_RE.match(allow.provenance_id)
    assert allow.profile_id is None and allow.profile_hash is None

    pending = faramesh.gate_decide(agent, "shell", "run", {"cmd": "ls"})
    assert (pending.outcome, pending.reason_code) == ("ABSTAIN", "POLICY_REQUIRE_APPROVAL")
    halt = faramesh.gate_decide(agent, "stripe", "refund", {"amount": 1})
    assert (halt.outcome, halt.reason_code) == ("HALT", "POLICY_DENY")
    default = faramesh.gate_decide(agent, "ftp", "put", {})
    assert (default.outcome, default.reason_code) == ("HALT", "DEFAULT_DENY_NO_MATCH")

    raw = faramesh.gate_decide_dict(agent, "shell", "run", {"cmd": "ls"}, {"k": "v"})
    assert raw["outcome"] == "ABSTAIN" and raw["risk_level"] == "medium"

    # gate/decide stores nothing.
    assert faramesh.list_actions(agent_id=agent) == []


def test_gate_decision_matches_the_submitted_action(agent):
    params = {"url": "https://example.com/same"}
    decision = faramesh.gate_decide(agent, "http", "get", params)
    action = faramesh.submit_action(agent, "http", "get", params)
    assert decision.outcome == action["outcome"]
    assert decision.reason_code == action["reason_code"]
    assert decision.request_hash == action["request_hash"]
    assert decision.policy_hash == action["policy_hash"]
    assert decision.provenance_id == action["provenance_id"]


def test_govern_raises_typed_errors(agent):
    decision = faramesh.govern(agent, "http", "get", {"url": "https://example.com"})
    assert decision.outcome == "EXECUTE"
    with pytest.raises(DenyError) as denied:
        faramesh.govern(agent, "stripe", "refund", {"amount": 1})
    assert denied.value.reason_code == "POLICY_DENY"
    assert denied.value.reason == "Refunds are blocked in this test"
    with pytest.raises(DeferredError) as deferred:
        faramesh.govern(agent, "shell", "run", {"cmd": "ls"})
    assert deferred.value.reason_code == "POLICY_REQUIRE_APPROVAL"


def test_execute_if_allowed(agent):
    calls = []

    def executor(tool, operation, params, context):
        calls.append((tool, operation, params, context))
        return {"done": True}

    ran = faramesh.execute_if_allowed(agent, "http", "get", {"u": 1}, executor=executor)
    assert ran["executed"] is True and ran["execution_result"] == {"done": True}
    held = faramesh.execute_if_allowed(agent, "shell", "run", {"cmd": "ls"}, executor=executor)
    assert held["executed"] is False and held["outcome"] == "ABSTAIN"
    assert calls == [("http", "get", {"u": 1}, {})]


def test_replay_decision_by_action_and_provenance(agent):
    action = faramesh.submit_action(agent, "http", "get", {"url": "https://example.com/rd"})
    by_id = faramesh.replay_decision(action_id=action["id"])
    assert by_id.success, by_id.mismatches
    assert by_id.original_outcome == by_id.replayed_outcome == "EXECUTE"
    assert by_id.request_hash_match and by_id.policy_hash_match
    assert by_id.profile_hash_match and by_id.runtime_version_match

    by_provenance = faramesh.replay_decision(provenance_id=action["provenance_id"])
    assert by_provenance.success, by_provenance.mismatches

    pending = pending_shell(agent, "echo hi")
    replayed = faramesh.replay_decision(action_id=pending["id"])
    assert replayed.success and replayed.replayed_outcome == "ABSTAIN"


# --------------------------------------------------------------------------- live events


def test_stream_events_sees_creation_and_approval(agent):
    seen: list[dict] = []

    def collect(event):
        if event.get("data", {}).get("agent_id") != agent:
            return
        seen.append(event)
        if event["type"] == "action.updated" and event["data"]["status"] == "approved":
            raise _StopStream

    thread, errors = stream_in_thread(collect,
                                      event_types=["action.created", "action.updated"])
    action = pending_shell(agent, "echo streamed")
    faramesh.approve_action(action["id"])
    join(thread, errors, "the SSE events")

    assert [(e["type"], e["data"]["id"], e["data"]["status"], e["data"]["decision"])
            for e in seen] == [
        ("action.created", action["id"], "pending_approval", "require_approval"),
        ("action.updated", action["id"], "approved", "allow"),
    ]
    for event in seen:
        assert event["timestamp"].endswith("Z")
        assert {"id", "status", "decision", "agent_id", "tool", "operation", "reason",
                "risk_level"} <= set(event["data"])


def test_stream_events_filtered_by_action_id(agent):
    """The SDK filters on a top-level `action_id` in each message; the server sends one."""
    other = pending_shell(agent, "echo other")
    target = pending_shell(agent, "echo target")
    seen: list[dict] = []

    def collect(event):
        seen.append(event)
        if event["type"] == "action.updated":
            raise _StopStream

    thread, errors = stream_in_thread(collect, action_id=target["id"])
    faramesh.approve_action(other["id"])
    faramesh.approve_action(target["id"])
    join(thread, errors, "the filtered SSE event")
    assert {e["data"]["id"] for e in seen} == {target["id"]}, "only the chosen action's events pass"
    assert seen[-1]["data"]["status"] == "approved"


# --------------------------------------------------------------------------- auth


def test_bearer_token_auth(agent, auth_server, monkeypatch):
    faramesh.configure(base_url=auth_server.url, token=ADMIN_TOKEN)
    action = faramesh.submit_action(agent, "shell", "run", {"cmd": "true"})
    assert action["status"] == "pending_approval"
    assert faramesh.approve_action(action["id"])["status"] == "approved"
    assert [a["id"] for a in faramesh.list_actions(agent_id=agent)] == [action["id"]]
    assert faramesh.gate_decide(agent, "http", "get", {}).outcome == "EXECUTE"

    faramesh.configure(base_url=auth_server.url, token="wrong-token")
    with pytest.raises(FarameshAuthError):
        faramesh.get_action(action["id"])

    faramesh.configure(base_url=auth_server.url)  # no token at all
    with pytest.raises(FarameshAuthError):
        faramesh.submit_action(agent, "http", "get", {})

    # The SDK also reads the token (and the URL) from the environment, legacy names included.
    monkeypatch.setenv("FARA_AUTH_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("FARA_API_BASE", auth_server.url)
    faramesh.configure()
    assert faramesh.get_action(action["id"])["status"] == "approved"


# --------------------------------------------------------------------------- incompatibilities


@pytest.mark.xfail(
    strict=True,
    raises=RuntimeError,
    reason=(
        "faramesh.transport.govern_via_transport (used by GovernedToolSet, the framework "
        "adapters and autopatch) sends POST /v1/evaluate with body {agent_id, tool_id: "
        "'<tool>/<operation>', action_type: 'tool_call', args} and expects 200 + JSON with "
        "'effect' or 'outcome' (EXECUTE/PERMIT, HALT/DENY, ABSTAIN/DEFER), 'reason_code' and "
        "'defer_token' or 'provenance_id'; the server has no /v1/evaluate (not part of this server's API, see docs/api.md) "
        "and answers 404 with an empty body, so the SDK raises "
        "RuntimeError('remote evaluate: HTTP 404')"
    ),
)
def test_remote_transport_evaluate(agent, server, monkeypatch, tmp_path):
    from faramesh.transport import detect_transport, govern_via_transport

    monkeypatch.setenv("FARAMESH_SOCKET", str(tmp_path / "no-daemon.sock"))
    monkeypatch.setenv("FARAMESH_REMOTE_URL", server.url)
    transport = detect_transport()
    assert transport.mode == "remote"
    result = govern_via_transport(transport, "http/get", {"url": "https://example.com"},
                                  agent_id=agent)
    assert result["effect"] == "EXECUTE"
    assert result["reason_code"] == "POLICY_ALLOW"
