"""``govern``: turn any function into a governed tool.

>>> @govern("shell", "run")
... def run_shell(cmd: str) -> str:
...     return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout

Each call of ``run_shell("ls")`` submits the action ``shell/run`` with params
``{"cmd": "ls"}``, waits while it is pending approval, runs the function only when the action
is allowed or approved, reports the outcome (the return value, or the exception text) and
returns the function's value. A denied call raises :class:`~faramesh.DenyError` with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar, Union, overload

from .api import gate_decide, get_client
from .client import ExecutionGovernorClient
from .exceptions import (
    DeferredError,
    DenyError,
    FarameshDeniedError,
    FarameshError,
)
from .models import PERMITTED_STATUSES, Action, GateDecision

__all__ = ["govern", "governed_tool", "to_jsonable", "await_permission", "report_outcome"]

logger = logging.getLogger("faramesh")

F = TypeVar("F", bound=Callable[..., Any])

#: Longest serialized output sent with a result report, in characters.
MAX_OUTPUT_CHARS = 100_000

PendingHook = Callable[[Action], Any]


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON data: unknown objects become their ``repr``."""
    try:
        return json.loads(json.dumps(value, default=repr))
    except (TypeError, ValueError):
        return repr(value)


def _output_for_report(value: Any) -> Any:
    data = to_jsonable(value)
    text = json.dumps(data)
    if len(text) > MAX_OUTPUT_CHARS:
        return {"truncated": True, "preview": text[:MAX_OUTPUT_CHARS]}
    return data


def _default_on_pending(action: Action) -> None:
    logger.warning(
        "faramesh: action %s (%s/%s) is waiting for approval: %s; approve it with "
        "`faramesh approve %s` or in the web UI",
        action.get("id"),
        action.get("tool"),
        action.get("operation"),
        action.get("reason"),
        action.get("id"),
    )


def await_permission(
    client: ExecutionGovernorClient,
    action: Action,
    *,
    timeout: Optional[float] = 300.0,
    poll_interval: Optional[float] = None,
    on_pending: Optional[PendingHook] = None,
) -> Action:
    """Return the action once it may run (``allowed``/``approved``, or a fail-open placeholder).

    Waits while it is ``pending_approval`` (calling ``on_pending`` first). Raises
    :class:`DenyError` when it is or becomes ``denied``, and
    :class:`~faramesh.FarameshTimeoutError` when no one decides within ``timeout`` seconds or
    the approval expires.
    """
    if action.get("fail_open"):
        return action
    label = f"{action.get('tool')}/{action.get('operation')}"
    status = action.get("status")
    if status == "denied":
        reason = action.get("reason") or "denied by policy"
        raise DenyError(
            f"Faramesh denied {label}: {reason}",
            action=action,
            reason=reason,
            reason_code=str(action.get("reason_code") or ""),
        )
    if status == "pending_approval":
        (on_pending or _default_on_pending)(action)
        try:
            action = client.block_until_approved(action["id"], poll_interval=poll_interval, timeout=timeout)
        except FarameshDeniedError as exc:
            reason = exc.reason or "denied by a human approver"
            raise DenyError(
                f"Faramesh denied {label}: {reason}",
                action=exc.action,
                reason=reason,
                reason_code=exc.reason_code,
            ) from None
        status = action.get("status")
    if status not in PERMITTED_STATUSES:
        raise FarameshError(f"Action {action.get('id')} ({label}) is {status}; it may not run")
    return action


def report_outcome(
    client: ExecutionGovernorClient,
    action: Action,
    *,
    success: bool,
    output: Any = None,
    error: Optional[str] = None,
) -> None:
    """Report a result; a failure to report is logged, never raised (the call already ran)."""
    try:
        client.report_result(
            action["id"],
            success,
            error=error,
            output=_output_for_report(output) if output is not None else None,
        )
    except FarameshError as exc:
        logger.warning("faramesh: could not report the result of action %s: %s", action.get("id"), exc)


def _params_builder(
    fn: Callable[..., Any], static: Mapping[str, Any]
) -> Callable[[Tuple[Any, ...], Dict[str, Any]], Dict[str, Any]]:
    signature = inspect.signature(fn)
    names = list(signature.parameters)
    skip_first = bool(names) and names[0] in ("self", "cls")

    def build(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
        params: Dict[str, Any] = dict(static)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            params.update({"args": to_jsonable(list(args)), "kwargs": to_jsonable(kwargs)})
            return params
        bound.apply_defaults()
        for index, (name, value) in enumerate(bound.arguments.items()):
            if index == 0 and skip_first:
                continue
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                params.update({key: to_jsonable(v) for key, v in value.items()})
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                params[name] = to_jsonable(list(value))
            else:
                params[name] = to_jsonable(value)
        return params

    return build


def _decorate(
    fn: F,
    *,
    tool: Optional[str],
    operation: Optional[str],
    agent_id: Optional[str],
    params: Optional[Mapping[str, Any]],
    context: Optional[Mapping[str, Any]],
    client: Optional[ExecutionGovernorClient],
    timeout: Optional[float],
    poll_interval: Optional[float],
    on_pending: Optional[PendingHook],
    report: bool,
) -> F:
    tool_name = tool or fn.__name__
    operation_name = operation or "invoke"
    build_params = _params_builder(fn, params or {})
    base_context = dict(context or {})

    def gate(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[ExecutionGovernorClient, Action]:
        c = client or get_client()
        action = c.submit_action(
            agent_id=agent_id or c.config.agent_id,
            tool=tool_name,
            operation=operation_name,
            params=build_params(args, kwargs),
            context={**base_context, "function": getattr(fn, "__qualname__", tool_name)},
        )
        action = await_permission(
            c, action, timeout=timeout, poll_interval=poll_interval, on_pending=on_pending
        )
        return c, action

    def finish(
        c: ExecutionGovernorClient, action: Action, *, value: Any = None, exc: Optional[BaseException] = None
    ) -> None:
        if not report:
            return
        if exc is None:
            report_outcome(c, action, success=True, output=value)
        else:
            report_outcome(c, action, success=False, error=f"{type(exc).__name__}: {exc}")

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            c, action = await asyncio.to_thread(gate, args, kwargs)
            try:
                value = await fn(*args, **kwargs)
            except Exception as exc:
                await asyncio.to_thread(finish, c, action, exc=exc)
                raise
            await asyncio.to_thread(finish, c, action, value=value)
            return value

        wrapper: Callable[..., Any] = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            c, action = gate(args, kwargs)
            try:
                value = fn(*args, **kwargs)
            except Exception as exc:
                finish(c, action, exc=exc)
                raise
            finish(c, action, value=value)
            return value

        wrapper = sync_wrapper
    wrapper.faramesh_tool = tool_name  # type: ignore[attr-defined]
    wrapper.faramesh_operation = operation_name  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _gate_check(
    agent_id: str,
    tool: str,
    operation: str,
    params: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
) -> GateDecision:
    decision = gate_decide(agent_id, tool, operation, params, context)
    outcome = (decision.outcome or "").upper()
    if outcome in ("EXECUTE", "PERMIT"):
        return decision
    if outcome in ("HALT", "DENY"):
        raise DenyError(
            f"governance denied: {decision.reason_code or 'unknown'}",
            reason_code=decision.reason_code or "",
            reason=decision.reason,
            decision=decision,
        )
    if outcome in ("ABSTAIN", "DEFER", "PENDING"):
        raise DeferredError(
            f"governance deferred: {decision.reason_code or 'unknown'}",
            reason_code=decision.reason_code or "",
            reason=decision.reason,
            decision=decision,
        )
    raise FarameshError(f"unexpected gate outcome: {decision.outcome!r}")


@overload
def govern(fn: F, /) -> F: ...


@overload
def govern(
    tool: Optional[str] = None,
    operation: Optional[str] = None,
    *,
    agent_id: Optional[str] = None,
    params: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
    client: Optional[ExecutionGovernorClient] = None,
    timeout: Optional[float] = 300.0,
    poll_interval: Optional[float] = None,
    on_pending: Optional[PendingHook] = None,
    report: bool = True,
) -> Callable[[F], F]: ...


@overload
def govern(
    agent_id: str,
    tool: str,
    operation: str,
    params: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
    /,
) -> GateDecision: ...


def govern(*args: Any, **kwargs: Any) -> Any:
    """Decorator that turns a function into a governed tool.

    Forms:
        ``@govern`` (tool = the function's name, operation ``invoke``),
        ``@govern("shell", "run")``, ``@govern(tool="http", operation="get", agent_id="bot")``.

    Keyword options:
        agent_id: Agent id for the actions (default: the client's ``agent_id``).
        params: Fixed params merged under the call's arguments.
        context: Context sent with every action (``function`` is added).
        client: An :class:`ExecutionGovernorClient` (default: the configured one).
        timeout: Seconds to wait for a human decision (default 300; ``None``: no limit).
        poll_interval: Seconds between polls while waiting.
        on_pending: Called with the action when it needs approval, before waiting
            (default: a log warning naming ``faramesh approve <id>``).
        report: Report the result (default True).

    The call's arguments become the params (by parameter name, defaults included;
    ``**kwargs`` merged flat; values that are not JSON become their ``repr``).
    Allowed or approved → the function runs, its outcome is reported, its value returned.
    Denied → :class:`DenyError` (a :class:`FarameshPolicyError`) with the reason; the function
    does not run. With ``fail_open`` configured and the server unreachable the function runs
    unreported. Coroutine functions are supported.

    Called with three positional strings, ``govern(agent_id, tool, operation, params?,
    context?)`` is instead a one-off gate check (as in earlier releases): it returns the
    :class:`GateDecision` for EXECUTE and raises :class:`DenyError` for HALT and
    :class:`DeferredError` for ABSTAIN, without storing an action.
    """
    if len(args) >= 3:
        if kwargs:
            raise TypeError(
                "the gate-check form govern(agent_id, tool, operation, params, context) takes no keywords"
            )
        return _gate_check(*args)
    options: Dict[str, Any] = {
        "tool": None,
        "operation": None,
        "agent_id": None,
        "params": None,
        "context": None,
        "client": None,
        "timeout": 300.0,
        "poll_interval": None,
        "on_pending": None,
        "report": True,
    }
    unknown = set(kwargs) - set(options)
    if unknown:
        raise TypeError(f"govern() got unexpected keyword(s): {', '.join(sorted(unknown))}")
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return _decorate(args[0], **options)
    for name, value in zip(("tool", "operation"), args):
        if name in kwargs:
            raise TypeError(f"govern() got multiple values for {name!r}")
        if not isinstance(value, str):
            raise TypeError(f"govern(): {name} must be a string")
        kwargs[name] = value
    options.update(kwargs)

    def decorator(fn: F) -> F:
        return _decorate(fn, **options)

    return decorator


def governed_tool(
    agent_id: str,
    tool: str,
    operation: Optional[str] = None,
    *,
    block_until_done: bool = False,
    wait_timeout: Union[int, float] = 60,
    poll_interval: Union[int, float] = 1,
) -> Callable[[Callable[..., Any]], Callable[..., Action]]:
    """Decorator of earlier releases: each call only *submits* the action (params
    ``{"args": [repr...], "kwargs": {...}}``) and returns it, without running the function.
    With ``block_until_done`` it waits while the action is pending approval. Prefer
    :func:`govern`, which also runs the function and reports its result."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Action]:
        op_name = operation or fn.__name__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Action:
            client = get_client()
            action = client.submit_action(
                agent_id=agent_id,
                tool=tool,
                operation=op_name,
                params={"args": [repr(a) for a in args], "kwargs": to_jsonable(kwargs)},
            )
            if block_until_done and action.get("status") == "pending_approval":
                action = client.block_until_approved(
                    action["id"], poll_interval=poll_interval, timeout=wait_timeout
                )
            return action

        return wrapper

    return decorator
