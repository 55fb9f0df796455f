"""Each exception type, mapped from the status the server (or a stub) answers."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from typing import Iterator, List, Optional

import pytest

from conftest import ADMIN_TOKEN, make_client
from faramesh import (
    AuthorizationError,
    FarameshAuthError,
    FarameshConflictError,
    FarameshConnectionError,
    FarameshError,
    FarameshForbiddenError,
    FarameshNotFoundError,
    FarameshServerError,
    FarameshTimeoutError,
    FarameshValidationError,
)
from support import Server, StubServer, faramesh_bin, free_port, unique


@pytest.fixture
def stub_500() -> Iterator[StubServer]:
    stub = StubServer(lambda method, path, n: (500, {"detail": "boom: something broke"}))
    yield stub
    stub.close()


# --------------------------------------------------------------------------- 401 / 403


def test_401_without_token(auth_server: Server) -> None:
    with make_client(auth_server.url, token="") as anonymous:
        with pytest.raises(FarameshAuthError) as info:
            anonymous.list_actions()
    assert info.value.status_code == 401
    assert info.value.detail
    assert not isinstance(info.value, FarameshForbiddenError)


def test_401_with_a_wrong_token(auth_server: Server) -> None:
    with make_client(auth_server.url, token="not-the-token") as wrong:
        with pytest.raises(FarameshAuthError) as info:
            wrong.submit_action("a", "calc", "add", {})
    assert info.value.status_code == 401
    with make_client(auth_server.url, token="not-the-token") as wrong:
        with pytest.raises(FarameshAuthError):
            next(wrong.tail_events(timeout=30))


def test_token_from_argument_and_environment(auth_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with make_client(auth_server.url, token=ADMIN_TOKEN) as admin:
        action = admin.submit_action(unique(), "shell", "run", {"cmd": "ls"})
        assert action["status"] == "pending_approval"
        assert admin.approve_action(action["id"])["status"] == "approved"
    monkeypatch.setenv("FARAMESH_TOKEN", ADMIN_TOKEN)
    with make_client(auth_server.url) as from_env:
        assert from_env.get_action(action["id"])["status"] == "approved"


def test_wrong_approval_token_is_401(server: Server) -> None:
    with make_client(server.url) as c:
        pending = c.submit_action(unique(), "deploy", "x", {})
        with pytest.raises(FarameshAuthError) as info:
            c.approve_action(pending["id"], token="0" * 32)
    assert info.value.status_code == 401
    assert "approval token" in (info.value.detail or "")


def test_403_maps_to_the_forbidden_error() -> None:
    stub = StubServer(lambda method, path, n: (403, {"detail": "agent tokens may not approve actions"}))
    try:
        with make_client(stub.url) as c:
            with pytest.raises(FarameshForbiddenError) as info:
                c.approve_action("a" * 8, token="t")
    finally:
        stub.close()
    assert isinstance(info.value, FarameshAuthError)
    assert AuthorizationError is FarameshForbiddenError
    assert info.value.status_code == 403
    assert info.value.detail == "agent tokens may not approve actions"
    assert len(stub.requests) == 1  # a 4xx is never retried


def _create_token(srv: Server, role: str) -> Optional[str]:
    """An API token with ``role`` made with `faramesh token create`, or None when this server
    build has no API tokens with roles."""
    help_text = subprocess.run([faramesh_bin(), "token", "--help"], capture_output=True, text=True)
    if help_text.returncode != 0:
        return None
    attempts = [
        [
            "token",
            "create",
            "--name",
            unique(f"sdk-{role}"),
            "--role",
            role,
            "--json",
            "--port",
            str(srv.port),
            "--token",
            ADMIN_TOKEN,
        ],
    ]
    for args in attempts:
        done = subprocess.run(
            [faramesh_bin(), *args], cwd=srv.workdir, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            continue
        candidates: List[str] = []
        try:
            data = json.loads(done.stdout)
            if isinstance(data, dict) and isinstance(data.get("token"), str):
                candidates.append(data["token"])
        except ValueError:
            pass
        candidates += re.findall(r"[A-Za-z0-9_\-.~+/=]{20,}", done.stdout)
        for candidate in candidates:
            # Only a token the server accepts counts.
            with make_client(srv.url, token=candidate, max_retries=0) as probe:
                try:
                    probe.list_actions(limit=1)
                except FarameshAuthError:
                    continue
            return candidate
    return None


def test_403_and_roles_with_real_tokens(auth_server: Server) -> None:
    agent_token = _create_token(auth_server, "agent")
    if agent_token is None:
        pytest.skip("this server build has no API tokens with roles (`faramesh token create --role agent`)")
    approver_token = _create_token(auth_server, "approver")
    assert approver_token is not None
    with make_client(auth_server.url, token=agent_token) as agent_client:
        pending = agent_client.submit_action(unique(), "deploy", "x", {})
        assert pending["status"] == "pending_approval"
        assert pending["approval_token"] is None  # an agent never sees it
        with pytest.raises(FarameshForbiddenError) as info:
            agent_client.approve_action(pending["id"])
    assert info.value.status_code == 403
    assert isinstance(info.value, FarameshAuthError)
    assert info.value.detail
    with make_client(auth_server.url, token=approver_token) as approver:
        with pytest.raises(FarameshForbiddenError):
            approver.submit_action(unique(), "calc", "add", {})
        approved = approver.approve_action(pending["id"], reason="approved by the approver")
    assert approved["status"] == "approved"


# --------------------------------------------------------------------------- 404 / 409 / 422


def test_404(server: Server) -> None:
    with make_client(server.url) as c:
        missing = str(uuid.uuid4())
        with pytest.raises(FarameshNotFoundError) as info:
            c.get_action(missing)
        assert info.value.status_code == 404
        assert missing in (info.value.detail or "")
        with pytest.raises(FarameshNotFoundError):
            c.start_action(missing)
        with pytest.raises(FarameshNotFoundError):
            c.get_events(missing)


def test_409_second_decision_and_bad_transitions(server: Server) -> None:
    with make_client(server.url) as c:
        pending = c.submit_action(unique(), "deploy", "x", {})
        token = pending["approval_token"]
        c.approve_action(pending["id"], token=token)
        with pytest.raises(FarameshConflictError) as info:
            c.deny_action(pending["id"], token=token)
        assert info.value.status_code == 409
        assert info.value.current_status == "approved"
        assert "pending approval" in (info.value.detail or "")
        with pytest.raises(FarameshConflictError):
            c.approve_action(pending["id"])  # token no longer shown: the server still says 409
        denied = c.submit_action(unique(), "stripe", "refund", {})
        with pytest.raises(FarameshConflictError):
            c.start_action(denied["id"])
        with pytest.raises(FarameshConflictError):
            c.report_result(denied["id"], True)


def test_409_idempotency_key_reused_with_another_body(server: Server) -> None:
    agent = unique()
    key = f"key-{uuid.uuid4()}"
    with make_client(server.url) as c:
        first = c.submit_action(agent, "calc", "add", {"a": 1}, idempotency_key=key)
        again = c.submit_action(agent, "calc", "add", {"a": 1}, idempotency_key=key)
        assert again["id"] == first["id"]
        with pytest.raises(FarameshConflictError) as info:
            c.submit_action(agent, "calc", "add", {"a": 2}, idempotency_key=key)
        assert info.value.code == "idempotency_key_reused" or info.value.status_code == 409
        assert len(c.list_actions(agent_id=agent)) == 1


def test_422(server: Server) -> None:
    with make_client(server.url) as c:
        with pytest.raises(FarameshValidationError) as info:
            c.submit_action("agent", "", "run", {})
        assert info.value.status_code == 422
        assert "tool" in (info.value.detail or "")
        with pytest.raises(FarameshValidationError) as info:
            c.list_actions(status="bogus")
        assert "status" in (info.value.detail or "")
        with pytest.raises(FarameshValidationError):
            c.gate_decide("agent", "calc", "")


# --------------------------------------------------------------------------- 5xx, connection, timeout


def test_5xx_is_retried_then_raised(stub_500: StubServer) -> None:
    with make_client(stub_500.url, max_retries=2, retry_backoff_factor=0.01) as c:
        with pytest.raises(FarameshServerError) as info:
            c.get_action("abc")
    assert info.value.status_code == 500
    assert info.value.detail == "boom: something broke"
    assert len(stub_500.requests) == 3  # one try + two retries


def test_5xx_then_success() -> None:
    def respond(method: str, path: str, n: int):  # type: ignore[no-untyped-def]
        if n < 3:
            return 503, {"detail": "warming up"}
        return 200, {"id": "x", "status": "allowed"}

    stub = StubServer(respond)
    try:
        with make_client(stub.url, max_retries=3, retry_backoff_factor=0.01) as c:
            assert c.submit_action("a", "calc", "add", {})["status"] == "allowed"
    finally:
        stub.close()
    keys = {headers.get("Idempotency-Key") for _, _, headers, _ in stub.requests}
    assert len(stub.requests) == 3 and len(keys) == 1 and None not in keys


def test_connection_refused() -> None:
    with make_client(f"http://127.0.0.1:{free_port()}", max_retries=1, retry_backoff_factor=0.01) as c:
        with pytest.raises(FarameshConnectionError) as info:
            c.list_actions()
        assert info.value.status_code is None
        assert "127.0.0.1" in str(info.value)
        with pytest.raises(FarameshConnectionError):
            next(c.tail_events(max_reconnects=0))


def test_request_timeout() -> None:
    stub = StubServer(lambda method, path, n: None)  # never answers
    try:
        with make_client(stub.url, timeout=0.2, max_retries=1, retry_backoff_factor=0.01) as c:
            with pytest.raises(FarameshTimeoutError):
                c.get_action("abc")
    finally:
        stub.close()
    assert len(stub.requests) == 2


def test_every_error_is_a_faramesh_error() -> None:
    for cls in (
        FarameshAuthError,
        FarameshForbiddenError,
        FarameshNotFoundError,
        FarameshConflictError,
        FarameshValidationError,
        FarameshServerError,
        FarameshConnectionError,
        FarameshTimeoutError,
    ):
        assert issubclass(cls, FarameshError)


def test_telemetry_hooks(server: Server, stub_500: StubServer) -> None:
    started: List[str] = []
    ended: List[int] = []
    errors: List[Exception] = []
    hooks = dict(
        on_request_start=lambda method, url: started.append(f"{method} {url}"),
        on_request_end=lambda method, url, status, ms: ended.append(status),
        on_error=errors.append,
    )
    with make_client(server.url, **hooks) as c:
        c.list_actions(limit=1)
    assert started == [f"GET {server.url}/v1/actions"] and ended == [200] and errors == []
    started.clear(), ended.clear()
    with make_client(stub_500.url, max_retries=1, retry_backoff_factor=0.01, **hooks) as c:
        with pytest.raises(FarameshServerError):
            c.list_actions()
    assert len(started) == 2 and ended == [500, 500]
    assert len(errors) == 2 and all(isinstance(e, FarameshServerError) for e in errors)
