"""Fail-closed (the default) and fail-open with the server down."""

from __future__ import annotations

import logging
from typing import Callable, List

import pytest

from conftest import make_client
from faramesh import ExecutionGovernorClient, FarameshConnectionError, govern
from support import Server


def _down(server_factory: Callable[..., Server]) -> str:
    """The URL of a server that was started and then stopped: nothing listens there."""
    srv = server_factory("stopped")
    srv.stop()
    return srv.url


def test_fail_closed_by_default(server_factory: Callable[..., Server]) -> None:
    url = _down(server_factory)
    with make_client(url, retry_backoff_factor=0.01) as c:
        assert c.config.fail_open is False
        with pytest.raises(FarameshConnectionError):
            c.submit_action("agent", "shell", "run", {"cmd": "ls"})
        with pytest.raises(FarameshConnectionError):
            c.gate_decide("agent", "shell", "run", {"cmd": "ls"})

        ran: List[str] = []

        @govern("calc", "add", client=c)
        def add(a: int, b: int) -> int:
            ran.append("ran")
            return a + b

        with pytest.raises(FarameshConnectionError):
            add(1, 2)
        assert ran == []


def test_fail_open_returns_a_marked_allowed_action(
    server_factory: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    url = _down(server_factory)
    caplog.set_level(logging.WARNING, logger="faramesh")
    with make_client(url, retry_backoff_factor=0.01, fail_open=True) as c:
        action = c.submit_action("agent", "shell", "run", {"cmd": "ls"})
        assert action["fail_open"] is True
        assert action["status"] == "allowed"
        assert action["decision"] == "allow"
        assert action["reason_code"] == "FAIL_OPEN"
        assert action["id"].startswith("fail-open-")
        assert action["params"] == {"cmd": "ls"}
        assert any("FAIL-OPEN" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)

        # The usual follow-up calls work on the placeholder without a server.
        assert c.get_action(action["id"])["status"] == "allowed"
        assert c.start_action(action["id"])["status"] == "executing"
        assert c.report_result(action["id"], True, output=1)["status"] == "succeeded"

        decision = c.gate_decide("agent", "shell", "run", {"cmd": "ls"})
        assert decision.outcome == "EXECUTE" and decision.fail_open

        assert c.submit_and_wait("agent", "deploy", "x", {})["fail_open"] is True

        # Reads are not decisions: they still fail.
        with pytest.raises(FarameshConnectionError):
            c.list_actions()


def test_govern_runs_the_function_when_failing_open(server_factory: Callable[..., Server]) -> None:
    url = _down(server_factory)
    with make_client(url, retry_backoff_factor=0.01, fail_open=True) as c:

        @govern("shell", "run", client=c)
        def run(cmd: str) -> str:
            return f"ran {cmd}"

        assert run("ls") == "ran ls"


def test_fail_open_from_the_environment(
    server_factory: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _down(server_factory)
    monkeypatch.setenv("FARAMESH_FAIL_OPEN", "1")
    with ExecutionGovernorClient(url, retry_backoff_factor=0.01) as c:
        assert c.config.fail_open is True
        assert c.submit_action("agent", "calc", "add", {})["fail_open"] is True


def test_fail_open_does_not_hide_answers_of_a_running_server(server: Server) -> None:
    with make_client(server.url, fail_open=True) as c:
        denied = c.submit_action("agent", "stripe", "refund", {})
        assert denied["status"] == "denied"
        assert "fail_open" not in denied
