"""Every function of the functional API and of ExecutionGovernorClient against a real server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import faramesh
from faramesh import (
    DeferredError,
    DenyError,
    ExecutionGovernorClient,
    FarameshBatchError,
    FarameshConflictError,
    FarameshDeniedError,
    FarameshPolicyError,
    FarameshTimeoutError,
    GateDecision,
)
from support import Server, wait_until

UUID_LEN = 36


def test_submit_action_allowed_denied_pending(configured: ExecutionGovernorClient, agent: str) -> None:
    allowed = faramesh.submit_action(agent, "http", "get", {"url": "http://127.0.0.1/health"})
    assert allowed["status"] == "allowed"
    assert allowed["decision"] == "allow"
    assert allowed["reason"] == "Allow HTTP requests"
    assert allowed["agent_id"] == agent
    assert allowed["params"] == {"url": "http://127.0.0.1/health"}
    assert allowed["approval_token"] is None
    assert len(allowed["id"]) == UUID_LEN

    denied = faramesh.submit_action(agent, "stripe", "refund", {"amount": 5})
    assert denied["status"] == "denied"
    assert denied["reason"] == "Refunds are blocked in tests"

    pending = faramesh.submit_action(agent, "shell", "run", {"cmd": "ls"}, {"ticket": "T-1"})
    assert pending["status"] == "pending_approval"
    assert pending["decision"] == "require_approval"
    assert pending["approval_token"]
    assert pending["context"] == {"ticket": "T-1"}


def test_get_action_and_list_actions(configured: ExecutionGovernorClient, agent: str) -> None:
    first = faramesh.submit_action(agent, "calc", "add", {"a": 1, "b": 2})
    second = faramesh.submit_action(agent, "stripe", "refund", {"amount": 1})
    fetched = faramesh.get_action(first["id"])
    assert fetched["id"] == first["id"]
    assert fetched["status"] == "allowed"
    assert fetched["request_hash"] == first["request_hash"]

    listed = faramesh.list_actions(agent_id=agent)
    assert [a["id"] for a in listed] == [second["id"], first["id"]]  # newest first
    assert [a["id"] for a in faramesh.list_actions(agent_id=agent, status="denied")] == [second["id"]]
    assert [a["id"] for a in faramesh.list_actions(agent_id=agent, tool="calc")] == [first["id"]]
    assert [a["id"] for a in faramesh.list_actions(agent_id=agent, limit=1)] == [second["id"]]
    assert [a["id"] for a in faramesh.list_actions(agent_id=agent, limit=1, offset=1)] == [first["id"]]
    # A piece of the agent's name, in other case, finds both; a piece of an operation one.
    assert [a["id"] for a in faramesh.list_actions(search=agent[:-2].upper())] == [second["id"], first["id"]]
    assert [a["id"] for a in faramesh.list_actions(search="REFUND", agent_id=agent)] == [second["id"]]


def test_approve_action_fetches_the_token_itself(configured: ExecutionGovernorClient, agent: str) -> None:
    pending = faramesh.submit_action(agent, "shell", "run", {"cmd": "ls"})
    approved = faramesh.approve_action(pending["id"], reason="looks fine")
    assert approved["status"] == "approved"
    assert approved["decision"] == "allow"
    assert approved["reason"] == "looks fine"
    assert approved["approval_token"] is None


def test_approve_action_with_explicit_token(configured: ExecutionGovernorClient, agent: str) -> None:
    pending = faramesh.submit_action(agent, "shell", "run", {"cmd": "pwd"})
    approved = faramesh.approve_action(pending["id"], token=pending["approval_token"])
    assert approved["status"] == "approved"


def test_deny_action(configured: ExecutionGovernorClient, agent: str) -> None:
    pending = faramesh.submit_action(agent, "deploy", "prod", {"service": "api"})
    denied = faramesh.deny_action(pending["id"], reason="not on a Friday")
    assert denied["status"] == "denied"
    assert denied["decision"] == "deny"
    assert denied["reason"] == "not on a Friday"
    assert faramesh.allow is faramesh.approve_action and faramesh.deny is faramesh.deny_action


def test_start_action_and_report_result(configured: ExecutionGovernorClient, agent: str) -> None:
    action = faramesh.submit_action(agent, "calc", "add", {"a": 2, "b": 3})
    started = faramesh.start_action(action["id"])
    assert started["status"] == "executing"
    done = faramesh.report_result(action["id"], True, output={"sum": 5})
    assert done["status"] == "succeeded"
    assert done["result"] == {"sum": 5}

    failing = faramesh.submit_action(agent, "calc", "div", {"a": 1, "b": 0})
    faramesh.start_action(failing["id"])
    failed = faramesh.report_result(failing["id"], False, error="ZeroDivisionError: division by zero")
    assert failed["status"] == "failed"
    assert failed["reason"] == "ZeroDivisionError: division by zero"


def test_report_result_straight_from_allowed_and_result_alias(
    configured: ExecutionGovernorClient, agent: str
) -> None:
    action = faramesh.submit_action(agent, "calc", "mul", {"a": 2, "b": 3})
    done = faramesh.report_result(action["id"], success=True, result=6)
    assert done["status"] == "succeeded"
    assert done["result"] == 6


def test_get_events_is_the_ledger(configured: ExecutionGovernorClient, agent: str) -> None:
    action = faramesh.submit_action(agent, "shell", "run", {"cmd": "ls"})
    faramesh.approve_action(action["id"])
    types = [e["event_type"] for e in faramesh.get_events(action["id"])]
    assert types == ["created", "decision_made", "approved"]


def test_wait_for_completion_with_the_servers_shell_executor(
    configured: ExecutionGovernorClient, agent: str
) -> None:
    action = faramesh.submit_action(agent, "shell", "run", {"cmd": "echo governed"})
    faramesh.approve_action(action["id"])
    faramesh.start_action(action["id"])
    done = faramesh.wait_for_completion(action["id"], poll_interval=0.05, timeout=60)
    assert done["status"] == "succeeded"
    assert done["result"]["stdout"] == "governed\n"


def test_wait_for_completion_times_out(configured: ExecutionGovernorClient, agent: str) -> None:
    action = faramesh.submit_action(agent, "calc", "add", {"a": 1})
    faramesh.start_action(action["id"])  # no executor for calc: stays executing
    with pytest.raises(FarameshTimeoutError) as info:
        faramesh.wait_for_completion(action["id"], poll_interval=0.01, timeout=0.05)
    assert info.value.action is not None and info.value.action["status"] == "executing"


def test_submit_and_wait_allowed_and_denied(configured: ExecutionGovernorClient, agent: str) -> None:
    allowed = faramesh.submit_and_wait(agent, "calc", "add", {"a": 1})
    assert allowed["status"] == "allowed"
    with pytest.raises(FarameshDeniedError) as info:
        faramesh.submit_and_wait(agent, "stripe", "refund", {"amount": 9})
    assert isinstance(info.value, FarameshPolicyError)
    assert info.value.reason == "Refunds are blocked in tests"
    assert info.value.action is not None and info.value.action["status"] == "denied"


def _approve_when_pending(
    client: ExecutionGovernorClient, agent: str, approve: bool = True
) -> threading.Thread:
    """Approve (or deny) this agent's first pending action from another thread."""

    def run() -> None:
        pending = wait_until(
            lambda: client.list_actions(agent_id=agent, status="pending_approval"), "a pending action"
        )
        if approve:
            client.approve_action(pending[0]["id"], reason="approved by the test")
        else:
            client.deny_action(pending[0]["id"], reason="denied by the test")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_submit_and_wait_waits_for_a_human(
    configured: ExecutionGovernorClient, client: ExecutionGovernorClient, agent: str
) -> None:
    helper = _approve_when_pending(client, agent)
    approved = faramesh.submit_and_wait(agent, "deploy", "staging", {"service": "api"}, timeout=60)
    helper.join()
    assert approved["status"] == "approved"
    assert approved["reason"] == "approved by the test"


def test_submit_and_wait_raises_when_a_human_denies(
    configured: ExecutionGovernorClient, client: ExecutionGovernorClient, agent: str
) -> None:
    helper = _approve_when_pending(client, agent, approve=False)
    with pytest.raises(FarameshDeniedError) as info:
        faramesh.submit_and_wait(agent, "deploy", "prod", {"service": "db"}, timeout=60)
    helper.join()
    assert info.value.reason == "denied by the test"


def test_submit_and_wait_options(configured: ExecutionGovernorClient, agent: str) -> None:
    pending = faramesh.submit_and_wait(agent, "deploy", "x", {}, require_approval=False)
    assert pending["status"] == "pending_approval"
    done = faramesh.submit_and_wait(
        agent, "shell", "run", {"cmd": "echo auto"}, auto_approve=True, auto_start=True, timeout=60
    )
    assert done["status"] == "succeeded"
    assert done["result"]["stdout"] == "auto\n"
    with pytest.raises(FarameshTimeoutError):
        faramesh.submit_and_wait(agent, "deploy", "y", {}, timeout=0.05, poll_interval=0.01)


def test_block_until_approved(
    configured: ExecutionGovernorClient, client: ExecutionGovernorClient, agent: str
) -> None:
    action = faramesh.submit_action(agent, "deploy", "canary", {})
    helper = _approve_when_pending(client, agent)
    approved = faramesh.block_until_approved(action["id"], poll_interval=0.05, timeout=60)
    helper.join()
    assert approved["status"] == "approved"


def test_gate_decide_stores_nothing(configured: ExecutionGovernorClient, agent: str) -> None:
    execute = faramesh.gate_decide(agent, "http", "get", {"url": "http://localhost"})
    assert isinstance(execute, GateDecision)
    assert execute.outcome == "EXECUTE" and execute.allowed
    assert execute.reason_code == "POLICY_ALLOW"
    assert len(execute.request_hash) == 64
    assert execute["outcome"] == "EXECUTE"
    halt = faramesh.gate_decide(agent, "stripe", "refund", {"amount": 1})
    assert halt.outcome == "HALT" and halt.denied and halt.reason == "Refunds are blocked in tests"
    abstain = faramesh.gate_decide(agent, "shell", "run", {"cmd": "ls"})
    assert abstain.outcome == "ABSTAIN" and abstain.needs_approval
    unknown = faramesh.gate_decide_dict(agent, "nope", "x", {})
    assert unknown["reason_code"] == "DEFAULT_DENY_NO_MATCH"
    assert faramesh.list_actions(agent_id=agent) == []


def test_gate_decide_matches_the_stored_decision(configured: ExecutionGovernorClient, agent: str) -> None:
    action = faramesh.submit_action(agent, "calc", "add", {"a": 1})
    decision = faramesh.gate_decide(agent, "calc", "add", {"a": 1})
    assert decision.request_hash == action["request_hash"]
    assert decision.policy_hash == action["policy_hash"]
    replay = faramesh.replay_decision(action_id=action["id"])
    assert replay.success, replay.mismatches


def test_execute_if_allowed(configured: ExecutionGovernorClient, agent: str) -> None:
    ran = faramesh.execute_if_allowed(agent, "calc", "add", {"a": 1}, executor=lambda t, o, p, c: p["a"] + 1)
    assert ran["executed"] and ran["execution_result"] == 2
    blocked = faramesh.execute_if_allowed(agent, "stripe", "refund", {}, executor=lambda *a: 1 / 0)
    assert not blocked["executed"] and blocked["outcome"] == "HALT"


def test_replay_action(configured: ExecutionGovernorClient, agent: str) -> None:
    original = faramesh.submit_action(agent, "calc", "add", {"a": 7}, {"run": 1})
    copy = faramesh.replay_action(original["id"])
    assert copy["id"] != original["id"]
    assert copy["status"] == "allowed"
    assert copy["params"] == {"a": 7}
    assert copy["context"] == {"run": 1, "replayed_from": original["id"], "replay": True}
    denied = faramesh.submit_action(agent, "stripe", "refund", {})
    with pytest.raises(FarameshConflictError):
        faramesh.replay_action(denied["id"])


def test_raise_on_deny_restores_the_old_submit_behaviour(server: Server, agent: str) -> None:
    with ExecutionGovernorClient(server.url, agent_id=agent, raise_on_deny=True) as c:
        with pytest.raises(FarameshPolicyError) as info:
            c.submit_action("stripe", "refund", {"amount": 3})
    assert info.value.action_id is not None
    assert info.value.reason == "Refunds are blocked in tests"


def test_class_api_accepts_both_argument_orders(client: ExecutionGovernorClient, agent: str) -> None:
    legacy = client.submit_action("calc", "add", {"a": 1})  # agent_id from the client
    assert legacy["agent_id"] == agent
    explicit = client.submit_action("other-agent", "calc", "add", {"a": 1}, {"k": "v"})
    assert explicit["agent_id"] == "other-agent"
    assert explicit["context"] == {"k": "v"}
    keywords = client.submit_action(tool="calc", operation="add", params={"a": 1}, agent_id="kw-agent")
    assert keywords["agent_id"] == "kw-agent"
    assert client.gate_decide("calc", "add", {"a": 1}).outcome == "EXECUTE"
    assert client.health() == {"status": "healthy"}
    assert client.policy_info()["policy_hash"] == legacy["policy_hash"]


def test_class_api_has_every_function(client: ExecutionGovernorClient, agent: str) -> None:
    for name in (
        "submit_action",
        "get_action",
        "list_actions",
        "approve_action",
        "deny_action",
        "start_action",
        "report_result",
        "wait_for_completion",
        "submit_and_wait",
        "gate_decide",
        "replay_action",
        "tail_events",
    ):
        assert callable(getattr(client, name)), name
        assert callable(getattr(faramesh, name)), name
    pending = client.submit_action("deploy", "x", {})
    assert client.approve_action(pending["id"])["status"] == "approved"
    assert client.start_action(pending["id"])["status"] == "executing"
    assert client.report_result(pending["id"], True, output="ok")["status"] == "succeeded"
    assert client.wait_for_completion(pending["id"], timeout=60)["status"] == "succeeded"
    assert client.replay_action(pending["id"])["status"] == "pending_approval"
    assert client.submit_and_wait("calc", "add", {"a": 1})["status"] == "allowed"


def test_govern_gate_check_form(configured: ExecutionGovernorClient, agent: str) -> None:
    decision = faramesh.govern(agent, "calc", "add", {"a": 1})
    assert isinstance(decision, GateDecision) and decision.outcome == "EXECUTE"
    with pytest.raises(DenyError):
        faramesh.govern(agent, "stripe", "refund", {"amount": 1})
    with pytest.raises(DeferredError):
        faramesh.govern(agent, "shell", "run", {"cmd": "ls"})


def test_batches_and_apply(configured: ExecutionGovernorClient, agent: str, tmp_path: Path) -> None:
    results = faramesh.submit_actions(
        [
            {"agent_id": agent, "tool": "calc", "operation": "add", "params": {"a": 1}},
            {"agent_id": agent, "tool": "", "operation": "add"},
        ]
    )
    assert results[0]["status"] == "allowed"
    assert "error" in results[1]
    with pytest.raises(FarameshBatchError) as info:
        faramesh.submit_actions_bulk(
            [
                {"agent_id": agent, "tool": "calc", "operation": "add"},
                {"agent_id": agent, "tool": "", "operation": "x"},
            ],
            raise_on_error=True,
        )
    assert len(info.value.successes) == 1 and len(info.value.errors) == 1
    spec = tmp_path / "action.json"
    spec.write_text(json.dumps({"agent_id": agent, "tool": "calc", "operation": "add", "params": {"a": 2}}))
    assert faramesh.apply(spec)["params"] == {"a": 2}


def test_configure_keeps_what_it_is_not_given(configured: ExecutionGovernorClient, server: Server) -> None:
    faramesh.configure(poll_interval=0.5)
    config = faramesh.get_config()
    assert config.base_url == server.url
    assert config.poll_interval == 0.5
    assert config.retry_backoff_factor == 0.05


def test_stream_events_callback_form(configured: ExecutionGovernorClient, agent: str) -> None:
    action = faramesh.submit_action(agent, "calc", "add", {"a": 1})
    seen: list = []
    faramesh.stream_events(seen.append, action_id=action["id"], stop_after=1, timeout=60)
    assert seen[0]["type"] == "action.created"
    assert seen[0]["data"]["id"] == action["id"]
