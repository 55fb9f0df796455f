"""What every framework adapter does around one tool call, in one place.

An adapter turns the framework's call into ``(tool, params)``, asks :func:`decide`, runs the
tool only when no refusal comes back, and hands the outcome to :func:`report`. Deciding reuses
:func:`faramesh.govern.await_permission`, so waiting for approval, denials and fail-open behave
exactly as in :func:`faramesh.govern`: an unreachable server raises (nothing runs) unless the
client is configured to fail open.

A refusal is text the model can read, ``"Faramesh denied this call: <reason>"``, because a
model that is told why adapts (asks for approval, picks another tool) where an exception would
end the run.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..api import get_client
from ..client import ExecutionGovernorClient
from ..exceptions import DenyError, FarameshTimeoutError
from ..govern import await_permission, report_outcome, to_jsonable
from ..models import Action

__all__ = ["DENIAL_PREFIX", "PendingHook", "decide", "params_from_input", "refusal_error", "report"]

#: Start of the refusal text a denied call returns.
DENIAL_PREFIX = "Faramesh denied this call"

PendingHook = Callable[[Action], Any]


def params_from_input(tool_input: Any) -> Dict[str, Any]:
    """The action's params for a tool input: a mapping as JSON data, anything else as
    ``{"input": ...}`` (policies match on params as a JSON object)."""
    if isinstance(tool_input, Mapping):
        data = to_jsonable(dict(tool_input))
        if isinstance(data, dict):
            return data
        return {"input": data}
    return {"input": to_jsonable(tool_input)}


def decide(
    client: Optional[ExecutionGovernorClient],
    *,
    agent_id: Optional[str],
    tool: str,
    operation: str,
    params: Mapping[str, Any],
    context: Mapping[str, Any],
    timeout: Optional[float],
    poll_interval: Optional[float],
    on_pending: Optional[PendingHook],
) -> Tuple[ExecutionGovernorClient, Action, Optional[str]]:
    """Submit the call and wait while it is pending approval.

    Returns ``(client, action, refusal)``; ``refusal`` is None when the call may run, else the
    text to hand the model (denied by the policy or a human, approval expired, or no decision
    within ``timeout`` seconds). Errors reaching the server are raised, never turned into
    permission.
    """
    c = client or get_client()
    action = c.submit_action(
        agent_id=agent_id or c.config.agent_id,
        tool=tool,
        operation=operation,
        params=dict(params),
        context=dict(context),
    )
    try:
        action = await_permission(
            c, action, timeout=timeout, poll_interval=poll_interval, on_pending=on_pending
        )
    except DenyError as exc:
        return c, exc.action or action, f"{DENIAL_PREFIX}: {exc.reason or 'denied'}"
    except FarameshTimeoutError as exc:
        current = exc.action or action
        if current.get("status") == "timeout":
            return c, current, f"{DENIAL_PREFIX}: the approval request expired before anyone decided"
        return (
            c,
            current,
            (
                f"{DENIAL_PREFIX}: no one approved it within {timeout} seconds "
                f"(action {current.get('id')} is still pending approval)"
            ),
        )
    return c, action, None


def refusal_error(
    action: Action, refusal: str, error_type: Callable[..., DenyError] = DenyError
) -> DenyError:
    """The exception an adapter raises instead of returning ``refusal`` (``raise_on_deny``)."""
    return error_type(
        refusal,
        action=action,
        reason=action.get("reason"),
        reason_code=str(action.get("reason_code") or ""),
    )


def report(
    client: ExecutionGovernorClient,
    action: Action,
    *,
    enabled: bool = True,
    output: Any = None,
    error: Optional[BaseException] = None,
    failure: Optional[str] = None,
) -> None:
    """Report how an allowed call ended: ``output``, or a failure (an exception, or the text a
    framework returned in place of one). Calls that ran fail-open have no action to report to."""
    if not enabled or action.get("fail_open"):
        return
    if error is not None:
        report_outcome(client, action, success=False, error=f"{type(error).__name__}: {error}")
    elif failure is not None:
        report_outcome(client, action, success=False, error=failure)
    else:
        report_outcome(client, action, success=True, output=output)
