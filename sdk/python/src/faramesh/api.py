"""The functional API: module-level functions on one process-wide client set up by
:func:`configure` (or from environment variables on first use)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Generator,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Union,
    overload,
)

import httpx

from .client import ExecutionGovernorClient
from .config import ClientConfig, ErrorHook, RequestEndHook, RequestStartHook
from .models import Action, Event, GateDecision, ReplayResult

__all__ = [
    "configure",
    "get_config",
    "get_client",
    "set_client",
    "submit_action",
    "submit_actions",
    "submit_actions_bulk",
    "submit_and_wait",
    "block_until_approved",
    "get_action",
    "get_events",
    "list_actions",
    "approve_action",
    "deny_action",
    "allow",
    "deny",
    "start_action",
    "report_result",
    "replay_action",
    "wait_for_completion",
    "gate_decide",
    "gate_decide_dict",
    "replay_decision",
    "execute_if_allowed",
    "apply",
    "tail_events",
    "stream_events",
]

_lock = threading.Lock()
_client: Optional[ExecutionGovernorClient] = None


def configure(
    base_url: Optional[str] = None,
    token: Optional[str] = None,
    timeout: Optional[float] = None,
    max_retries: Optional[int] = None,
    retry_backoff_factor: Optional[float] = None,
    on_request_start: Optional[RequestStartHook] = None,
    on_request_end: Optional[RequestEndHook] = None,
    on_error: Optional[ErrorHook] = None,
    *,
    agent_id: Optional[str] = None,
    fail_open: Optional[bool] = None,
    raise_on_deny: Optional[bool] = None,
    poll_interval: Optional[float] = None,
    max_backoff: Optional[float] = None,
    headers: Optional[Dict[str, str]] = None,
    transport: Optional[httpx.BaseTransport] = None,
) -> ExecutionGovernorClient:
    """Configure the process-wide client used by the module-level functions.

    Options not given keep their current value (on the first call: the environment
    variables of :class:`ClientConfig`, then the defaults).

    Args:
        base_url: Server URL (``FARAMESH_BASE_URL``; default ``http://127.0.0.1:8000``).
        token: Bearer token (``FARAMESH_TOKEN``).
        timeout: Seconds per HTTP request (default 30).
        max_retries: Retries after a connection error, timeout or 5xx (default 3).
        retry_backoff_factor: First retry delay in seconds, doubled each retry (default 0.5).
        on_request_start / on_request_end / on_error: Telemetry hooks
            ``(method, url)``, ``(method, url, status, duration_ms)``, ``(error)``.
        agent_id: Default agent id for ``govern`` and ``GovernedTool``.
        fail_open: When the server is unreachable, allow instead of raising (default False).
        raise_on_deny: ``submit_action`` raises ``FarameshPolicyError`` for denied actions.
        poll_interval: Seconds between polls while waiting (default 1).
        max_backoff: Longest delay between retries (default 10).
        headers: Extra headers for every request.
        transport: An ``httpx`` transport (tests, custom networking).

    Returns the new client (also used by every module-level function from now on).
    """
    global _client
    with _lock:
        base = _client.config if _client is not None else ClientConfig()
        config = base.replace(
            base_url=base_url,
            token=token,
            timeout=timeout,
            max_retries=max_retries,
            retry_backoff_factor=retry_backoff_factor,
            on_request_start=on_request_start,
            on_request_end=on_request_end,
            on_error=on_error,
            agent_id=agent_id,
            fail_open=fail_open,
            raise_on_deny=raise_on_deny,
            poll_interval=poll_interval,
            max_backoff=max_backoff,
            headers=headers,
        )
        old, _client = _client, ExecutionGovernorClient(config, transport=transport)
        if old is not None:
            old.close()
        return _client


def get_client() -> ExecutionGovernorClient:
    """The process-wide client (created from the environment on first use)."""
    global _client
    with _lock:
        if _client is None:
            _client = ExecutionGovernorClient(ClientConfig())
        return _client


def set_client(client: ExecutionGovernorClient) -> None:
    """Use ``client`` for the module-level functions from now on."""
    global _client
    with _lock:
        _client = client


def get_config() -> ClientConfig:
    """The configuration of the process-wide client."""
    return get_client().config


def submit_action(
    agent_id: str,
    tool: str,
    operation: str,
    params: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
    *,
    idempotency_key: Optional[str] = None,
) -> Action:
    """Submit a tool call for a decision and return the stored action
    (``status``: ``allowed``, ``denied`` or ``pending_approval``).

    >>> action = submit_action("my-agent", "http", "get", {"url": "http://localhost:8000/health"})
    >>> action["status"]
    'allowed'
    """
    return get_client().submit_action(
        agent_id=agent_id,
        tool=tool,
        operation=operation,
        params=params,
        context=context,
        idempotency_key=idempotency_key,
    )


def submit_actions(actions: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Submit several actions; failures appear in place as ``{"error", "action_spec"}``."""
    return get_client().submit_actions(actions)


def submit_actions_bulk(
    actions: Sequence[Mapping[str, Any]], *, raise_on_error: bool = False
) -> List[Dict[str, Any]]:
    """Submit several actions; ``raise_on_error`` raises ``FarameshBatchError`` on any failure."""
    return get_client().submit_actions_bulk(actions, raise_on_error=raise_on_error)


def submit_and_wait(
    agent_id: str,
    tool: str,
    operation: str,
    params: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
    *,
    require_approval: Optional[bool] = None,
    auto_approve: bool = False,
    auto_start: bool = False,
    timeout: Optional[float] = 300.0,
    poll_interval: Optional[float] = None,
    idempotency_key: Optional[str] = None,
) -> Action:
    """Submit and wait while the action is pending approval; raise ``FarameshDeniedError`` if
    it is denied. With ``auto_start`` the action is also started and waited for."""
    return get_client().submit_and_wait(
        agent_id=agent_id,
        tool=tool,
        operation=operation,
        params=params,
        context=context,
        require_approval=require_approval,
        auto_approve=auto_approve,
        auto_start=auto_start,
        timeout=timeout,
        poll_interval=poll_interval,
        idempotency_key=idempotency_key,
    )


def block_until_approved(
    action_id: str, *, poll_interval: Optional[float] = None, timeout: Optional[float] = 300.0
) -> Action:
    """Wait while the action is pending approval; raise ``FarameshDeniedError`` if denied."""
    return get_client().block_until_approved(action_id, poll_interval=poll_interval, timeout=timeout)


def get_action(action_id: str) -> Action:
    """Fetch one action by id."""
    return get_client().get_action(action_id)


def get_events(action_id: str) -> List[Dict[str, Any]]:
    """An action's ledger events, oldest first."""
    return get_client().get_events(action_id)


def list_actions(
    limit: int = 20,
    offset: int = 0,
    agent_id: Optional[str] = None,
    tool: Optional[str] = None,
    status: Optional[str] = None,
    search: Optional[str] = None,
) -> List[Action]:
    """List actions, newest first, with optional filters; ``search`` finds a piece of an agent,
    tool or operation name, ignoring case."""
    return get_client().list_actions(
        limit=limit, offset=offset, agent_id=agent_id, tool=tool, status=status, search=search
    )


def approve_action(action_id: str, token: Optional[str] = None, reason: Optional[str] = None) -> Action:
    """Approve a pending action (fetches its approval token when ``token`` is not given)."""
    return get_client().approve_action(action_id, token=token, reason=reason)


def deny_action(action_id: str, token: Optional[str] = None, reason: Optional[str] = None) -> Action:
    """Deny a pending action (fetches its approval token when ``token`` is not given)."""
    return get_client().deny_action(action_id, token=token, reason=reason)


#: Short names of earlier releases.
allow = approve_action
deny = deny_action


def start_action(action_id: str) -> Action:
    """Start an allowed or approved action."""
    return get_client().start_action(action_id)


def report_result(
    action_id: str,
    success: bool,
    error: Optional[str] = None,
    output: Any = None,
    *,
    result: Any = None,
) -> Action:
    """Report how an executed action ended (``succeeded`` with ``output``, or ``failed``
    with ``error``)."""
    return get_client().report_result(action_id, success, error=error, output=output, result=result)


def replay_action(action_id: str) -> Action:
    """Submit a copy of an allowed/approved/succeeded action (context gets ``replayed_from``)."""
    return get_client().replay_action(action_id)


def wait_for_completion(
    action_id: str, poll_interval: Optional[float] = None, timeout: Optional[float] = 60.0
) -> Action:
    """Wait until the action is succeeded, failed, denied or timeout."""
    return get_client().wait_for_completion(action_id, poll_interval=poll_interval, timeout=timeout)


def gate_decide(
    agent_id: str,
    tool: str,
    operation: str,
    params: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
) -> GateDecision:
    """Decide an action without storing it; ``outcome`` is EXECUTE, HALT or ABSTAIN."""
    return get_client().gate_decide(
        agent_id=agent_id, tool=tool, operation=operation, params=params, context=context
    )


def gate_decide_dict(
    agent_id: str,
    tool: str,
    operation: str,
    params: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """:func:`gate_decide` as the raw response dict."""
    return get_client().gate_decide_dict(
        agent_id=agent_id, tool=tool, operation=operation, params=params, context=context
    )


def replay_decision(action_id: Optional[str] = None, provenance_id: Optional[str] = None) -> ReplayResult:
    """Decide a stored action again and compare with what was stored."""
    return get_client().replay_decision(action_id=action_id, provenance_id=provenance_id)


def execute_if_allowed(
    agent_id: str,
    tool: str,
    operation: str,
    params: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
    executor: Optional[Callable[[str, str, Dict[str, Any], Dict[str, Any]], Any]] = None,
) -> Dict[str, Any]:
    """Run ``executor(tool, operation, params, context)`` only if the gate answers EXECUTE.

    Returns ``{"decision", "outcome", "reason_code", "executed", "execution_result"}``
    (plus ``execution_error`` when the executor raised).
    """
    decision = gate_decide(agent_id, tool, operation, params, context)
    result: Dict[str, Any] = {
        "decision": decision.to_dict(),
        "outcome": decision.outcome,
        "reason_code": decision.reason_code,
        "executed": False,
        "execution_result": None,
    }
    if decision.outcome == "EXECUTE" and executor is not None:
        try:
            result["execution_result"] = executor(tool, operation, dict(params or {}), dict(context or {}))
            result["executed"] = True
        except Exception as exc:
            result["execution_error"] = str(exc)
    return result


def apply(file_path: Union[str, Path]) -> Action:
    """Submit the action described in a JSON (or YAML) file."""
    return get_client().apply(file_path)


@overload
def tail_events(
    callback: None = None, action_id: Optional[str] = None, **options: Any
) -> Generator[Event, None, None]: ...


@overload
def tail_events(
    callback: Callable[[Event], Any], action_id: Optional[str] = None, **options: Any
) -> None: ...


def tail_events(
    callback: Optional[Callable[[Event], Any]] = None,
    action_id: Optional[str] = None,
    **options: Any,
) -> Optional[Generator[Event, None, None]]:
    """Follow the live event stream (SSE). Without ``callback`` returns a generator of
    events that reconnects by itself and resumes with ``Last-Event-ID``; with ``callback``
    calls it for each event. Options: ``agent_id``, ``status``, ``last_event_id``,
    ``event_types``, ``stop_after``, ``timeout``, ``reconnect``, ``max_reconnects``,
    ``read_timeout`` (see :meth:`ExecutionGovernorClient.iter_events`).

    >>> for event in tail_events(stop_after=1):
    ...     print(event["type"], event["data"]["id"], event["data"]["status"])
    """
    return get_client().tail_events(callback, action_id, **options)


def stream_events(
    callback: Callable[[Event], Any],
    *,
    event_types: Optional[List[str]] = None,
    stop_after: Optional[int] = None,
    timeout: Optional[float] = None,
    action_id: Optional[str] = None,
    **options: Any,
) -> None:
    """Call ``callback`` for each live event until ``stop_after`` events or ``timeout``."""
    get_client().stream_events(
        callback,
        event_types=event_types,
        stop_after=stop_after,
        timeout=timeout,
        action_id=action_id,
        **options,
    )
