"""The `govern` decorator through allow, deny and approval."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict, List

import pytest

from conftest import make_client
from faramesh import DenyError, ExecutionGovernorClient, FarameshPolicyError, FarameshTimeoutError, govern
from support import Server, wait_until


def _only_action(client: ExecutionGovernorClient, agent: str) -> Dict[str, Any]:
    actions = client.list_actions(agent_id=agent)
    assert len(actions) == 1, actions
    return actions[0]


def test_allowed_call_runs_and_is_reported(client: ExecutionGovernorClient, agent: str) -> None:
    @govern("calc", "add", client=client)
    def add(a: int, b: int = 10) -> int:
        return a + b

    assert add(1) == 11
    action = _only_action(client, agent)
    assert action["tool"] == "calc" and action["operation"] == "add"
    assert action["params"] == {"a": 1, "b": 10}
    assert action["context"]["function"].endswith("add")
    assert action["status"] == "succeeded"
    assert action["result"] == 11


def test_denied_call_raises_and_does_not_run(client: ExecutionGovernorClient, agent: str) -> None:
    ran: List[int] = []

    @govern("stripe", "refund", client=client)
    def refund(amount: int) -> None:
        ran.append(amount)

    with pytest.raises(DenyError) as info:
        refund(500)
    assert ran == []
    assert isinstance(info.value, FarameshPolicyError)
    assert info.value.reason == "Refunds are blocked in tests"
    assert "Refunds are blocked in tests" in str(info.value)
    assert info.value.action_id == _only_action(client, agent)["id"]
    assert _only_action(client, agent)["status"] == "denied"


def test_pending_call_waits_for_approve_action_from_another_thread(
    client: ExecutionGovernorClient, server: Server, agent: str
) -> None:
    pending_seen: List[Dict[str, Any]] = []

    @govern("deploy", "release", client=client, on_pending=pending_seen.append, timeout=60)
    def deploy(service: str, version: str) -> str:
        return f"{service}@{version} deployed"

    def approver() -> None:
        with make_client(server.url) as human:
            pending = wait_until(
                lambda: human.list_actions(agent_id=agent, status="pending_approval"), "a pending action"
            )
            human.approve_action(pending[0]["id"], reason="ship it")

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    assert deploy("api", version="1.2.3") == "api@1.2.3 deployed"
    thread.join()
    assert len(pending_seen) == 1 and pending_seen[0]["status"] == "pending_approval"
    action = _only_action(client, agent)
    assert action["params"] == {"service": "api", "version": "1.2.3"}
    assert action["status"] == "succeeded"
    assert action["result"] == "api@1.2.3 deployed"


def test_pending_call_approved_with_the_cli(
    client: ExecutionGovernorClient, server: Server, agent: str
) -> None:
    approved_by_cli: List[str] = []

    def approve_with_cli(action: Dict[str, Any]) -> None:
        # Runs before the decorator starts waiting, from another thread as a human would.
        def run() -> None:
            done = server.cli("approve", action["id"], "--reason", "approved from the CLI")
            approved_by_cli.append(done.stdout)

        threading.Thread(target=run, daemon=True).start()

    @govern("shell", "run", client=client, on_pending=approve_with_cli, timeout=60)
    def shell(cmd: str) -> str:
        return f"pretend output of {cmd}"

    assert shell("uname -a") == "pretend output of uname -a"
    assert approved_by_cli
    action = _only_action(client, agent)
    assert action["status"] == "succeeded"
    assert action["reason"] == "approved from the CLI"


def test_pending_call_denied_by_a_human_raises(client: ExecutionGovernorClient, agent: str) -> None:
    ran: List[str] = []

    def deny_it(action: Dict[str, Any]) -> None:
        threading.Thread(
            target=lambda: client.deny_action(action["id"], reason="not today"), daemon=True
        ).start()

    @govern("deploy", "release", client=client, on_pending=deny_it, timeout=60)
    def deploy() -> None:
        ran.append("ran")

    with pytest.raises(DenyError) as info:
        deploy()
    assert ran == []
    assert info.value.reason == "not today"


def test_pending_call_times_out(client: ExecutionGovernorClient, agent: str) -> None:
    @govern("deploy", "release", client=client, on_pending=lambda a: None, timeout=0.05, poll_interval=0.01)
    def deploy() -> None:
        raise AssertionError("must not run")

    with pytest.raises(FarameshTimeoutError):
        deploy()
    assert _only_action(client, agent)["status"] == "pending_approval"


def test_exception_is_reported_and_reraised(client: ExecutionGovernorClient, agent: str) -> None:
    @govern("calc", "div", client=client)
    def div(a: int, b: int) -> float:
        return a / b

    with pytest.raises(ZeroDivisionError):
        div(1, 0)
    action = _only_action(client, agent)
    assert action["status"] == "failed"
    assert action["reason"] == "ZeroDivisionError: division by zero"


def test_bare_decorator_kwargs_static_params_and_objects(client: ExecutionGovernorClient, agent: str) -> None:
    import faramesh

    previous = faramesh.get_client()
    faramesh.set_client(client)
    try:

        @govern
        def calc(*numbers: int, **options: Any) -> int:
            return sum(numbers)

        assert calc(1, 2, 3, scale=object.__name__) == 6
    finally:
        faramesh.set_client(previous)
    action = _only_action(client, agent)
    assert action["tool"] == "calc" and action["operation"] == "invoke"
    assert action["params"] == {"numbers": [1, 2, 3], "scale": "object"}

    @govern(tool="calc", operation="fmt", client=client, params={"unit": "eur"}, agent_id=agent + "-b")
    def fmt(value: object) -> str:
        return "x"

    fmt(object())
    other = client.list_actions(agent_id=agent + "-b")[0]
    assert other["params"]["unit"] == "eur"
    assert other["params"]["value"].startswith("<object object at")


def test_methods_can_be_governed(client: ExecutionGovernorClient, agent: str) -> None:
    class Calculator:
        @govern("calc", "add", client=client)
        def add(self, a: int, b: int) -> int:
            return a + b

    assert Calculator().add(2, 3) == 5
    assert _only_action(client, agent)["params"] == {"a": 2, "b": 3}


def test_async_functions(client: ExecutionGovernorClient, agent: str) -> None:
    @govern("calc", "add", client=client)
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    @govern("stripe", "refund", client=client)
    async def refund(amount: int) -> None:
        raise AssertionError("must not run")

    assert asyncio.run(add(2, 2)) == 4
    with pytest.raises(DenyError):
        asyncio.run(refund(1))
    statuses = sorted(a["status"] for a in client.list_actions(agent_id=agent))
    assert statuses == ["denied", "succeeded"]
