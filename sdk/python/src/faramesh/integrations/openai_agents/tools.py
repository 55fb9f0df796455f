"""Function tools of the OpenAI Agents SDK, governed by Faramesh.

>>> from agents import Agent
>>> from faramesh.integrations.openai_agents import governed_function_tool
>>> @governed_function_tool(agent_id="ops-agent", operation="run")
... def shell(cmd: str) -> str:
...     \"\"\"Run a shell command.\"\"\"
...     return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout
>>> agent = Agent(name="ops", instructions="...", tools=[shell])

Every call the model makes submits an action (tool = the tool's name, operation as configured,
params = the arguments the model sent), waits while it is pending approval, runs the tool when it
is allowed or approved, and reports the result. A denied call does not run: the model gets the
text ``"Faramesh denied this call: <reason>"`` as the tool's output (or, with
``raise_on_deny=True``, the run ends).

The gate sits in the tool's ``on_invoke_tool``, the one path through which the SDK runs a
function tool, so guardrails, ``needs_approval`` and timeouts configured on the tool keep working
around it. If the server cannot be reached the tool does not run and the run ends, unless the
client is configured to fail open. The SDK ends a run on an exception from a tool by raising its
``agents.exceptions.UserError``; the Faramesh exception (a :class:`~faramesh.DenyError`, a
:class:`~faramesh.FarameshConnectionError`...) is its ``__cause__``.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, overload

from agents import FunctionTool, function_tool
from agents.tool_context import ToolContext

from ...client import ExecutionGovernorClient
from ...models import Action
from .._gate import PendingHook, decide, params_from_input, refusal_error, report

__all__ = ["governed_function_tool", "govern_function_tool", "govern_tools"]


@dataclass
class _Call:
    """The governed call in progress, for the function wrapper of ``governed_function_tool``."""

    client: ExecutionGovernorClient
    action: Action
    report_results: bool
    reported: bool = False


# Set by the governed on_invoke_tool for the duration of the wrapped invocation. The SDK runs a
# sync tool function through asyncio.to_thread, which copies the context, so the function
# wrapper sees the same _Call object.
_current_call: ContextVar[Optional[_Call]] = ContextVar("faramesh_openai_agents_call", default=None)


def _params(arguments: str) -> Dict[str, Any]:
    """The action's params: the JSON object the model sent (``{}`` for no arguments)."""
    if not arguments or not arguments.strip():
        return {}
    try:
        data = json.loads(arguments)
    except ValueError:
        return {"input": arguments}
    return params_from_input(data)


def govern_function_tool(
    tool: FunctionTool,
    *,
    client: Optional[ExecutionGovernorClient] = None,
    agent_id: Optional[str] = None,
    operation: str = "run",
    raise_on_deny: bool = False,
    max_wait_time: Optional[float] = 300.0,
    poll_interval: Optional[float] = None,
    context: Optional[Mapping[str, Any]] = None,
    on_pending: Optional[PendingHook] = None,
    report_results: bool = True,
) -> FunctionTool:
    """A copy of ``tool`` whose calls are decided by Faramesh before they run.

    The copy keeps the tool's name, description, schema and settings; ``tool`` itself is not
    changed.

    Args:
        tool: The function tool to govern (from ``@function_tool`` or built by hand).
        client: An :class:`~faramesh.ExecutionGovernorClient` (default: the configured one).
        agent_id: Agent id of the actions (default: the client's ``agent_id``).
        operation: Operation of the actions (default ``"run"``).
        raise_on_deny: Raise :class:`~faramesh.DenyError` instead of handing the model the
            refusal text; the SDK then ends the run with a ``UserError`` caused by it.
        max_wait_time: Seconds to wait for a human decision (``None``: no limit; default 300).
            When it passes, the call is refused like a denial. Keep the tool's own
            ``timeout`` unset or longer, or it cancels the wait first.
        poll_interval: Seconds between polls while waiting for approval.
        context: Extra context sent with every action; its ``integration`` is
            ``"openai-agents"`` unless this names another.
        on_pending: Called with the action when it needs approval, before waiting.
        report_results: Report each call's outcome (default True).

    The outcome reported is what the tool's invoker returned or raised. A tool made by
    ``@function_tool`` turns its function's exceptions into a message for the model (its
    ``failure_error_function``), so such a failure is reported as a success whose result is
    that message; a tool made by :func:`governed_function_tool` reports the exception itself.
    """
    if not isinstance(tool, FunctionTool):
        raise TypeError(f"govern_function_tool() takes a FunctionTool, not {type(tool).__name__}")
    governed = copy.copy(tool)
    invoke_tool = governed.on_invoke_tool
    base_context = {"integration": "openai-agents", **(context or {})}

    async def on_invoke_tool(ctx: ToolContext[Any], arguments: str) -> Any:
        c, action, refusal = await asyncio.to_thread(
            decide,
            client,
            agent_id=agent_id,
            tool=governed.name,
            operation=operation,
            params=_params(arguments),
            context=base_context,
            timeout=max_wait_time,
            poll_interval=poll_interval,
            on_pending=on_pending,
        )
        if refusal is not None:
            if raise_on_deny:
                raise refusal_error(action, refusal)
            return refusal
        call = _Call(c, action, report_results)
        token = _current_call.set(call)
        try:
            result = await invoke_tool(ctx, arguments)
        except Exception as exc:
            if not call.reported:
                await asyncio.to_thread(report, c, action, enabled=report_results, error=exc)
            raise
        finally:
            _current_call.reset(token)
        if not call.reported:
            await asyncio.to_thread(report, c, action, enabled=report_results, output=result)
        return result

    governed.on_invoke_tool = on_invoke_tool
    return governed


def _reporting(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with the same signature, reporting its own outcome (value or exception) to the
    governed call in progress, before the SDK turns an exception into a message."""

    def finish(call: Optional[_Call], *, value: Any = None, error: Optional[BaseException] = None) -> None:
        if call is None or call.reported:
            return
        call.reported = True
        report(call.client, call.action, enabled=call.report_results, output=value, error=error)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            call = _current_call.get()
            try:
                value = await func(*args, **kwargs)
            except Exception as exc:
                await asyncio.to_thread(finish, call, error=exc)
                raise
            await asyncio.to_thread(finish, call, value=value)
            return value

        return async_wrapper

    @functools.wraps(func)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        call = _current_call.get()
        try:
            value = func(*args, **kwargs)
        except Exception as exc:
            finish(call, error=exc)
            raise
        finish(call, value=value)
        return value

    return sync_wrapper


@overload
def governed_function_tool(func: Callable[..., Any], /) -> FunctionTool: ...


@overload
def governed_function_tool(
    *,
    client: Optional[ExecutionGovernorClient] = None,
    agent_id: Optional[str] = None,
    operation: str = "run",
    raise_on_deny: bool = False,
    max_wait_time: Optional[float] = 300.0,
    poll_interval: Optional[float] = None,
    context: Optional[Mapping[str, Any]] = None,
    on_pending: Optional[PendingHook] = None,
    report_results: bool = True,
    **function_tool_options: Any,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def governed_function_tool(
    func: Optional[Callable[..., Any]] = None,
    /,
    *,
    client: Optional[ExecutionGovernorClient] = None,
    agent_id: Optional[str] = None,
    operation: str = "run",
    raise_on_deny: bool = False,
    max_wait_time: Optional[float] = 300.0,
    poll_interval: Optional[float] = None,
    context: Optional[Mapping[str, Any]] = None,
    on_pending: Optional[PendingHook] = None,
    report_results: bool = True,
    **function_tool_options: Any,
) -> Any:
    """``@function_tool``, governed: use it in its place, with or without arguments.

    Takes the options of :func:`govern_function_tool`; any other keyword
    (``name_override``, ``failure_error_function``, ``strict_mode``...) goes to the SDK's
    ``function_tool``. The function's return value, or the exception it raised, is what gets
    reported, even when the SDK hands the model an error message in its place.
    """
    options: Dict[str, Any] = dict(
        client=client,
        agent_id=agent_id,
        operation=operation,
        raise_on_deny=raise_on_deny,
        max_wait_time=max_wait_time,
        poll_interval=poll_interval,
        context=context,
        on_pending=on_pending,
        report_results=report_results,
    )

    def build(fn: Callable[..., Any]) -> FunctionTool:
        return govern_function_tool(function_tool(_reporting(fn), **function_tool_options), **options)

    if func is not None:
        return build(func)
    return build


def govern_tools(tools: Iterable[FunctionTool], **options: Any) -> List[FunctionTool]:
    """Govern every function tool of a list (same options for all, see
    :func:`govern_function_tool`)."""
    return [govern_function_tool(t, **options) for t in tools]
