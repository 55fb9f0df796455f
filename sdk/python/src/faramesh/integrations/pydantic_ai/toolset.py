"""``GovernedToolset``: any PydanticAI toolset, governed by Faramesh.

>>> from pydantic_ai import Agent
>>> from faramesh.integrations.pydantic_ai import governed_toolset
>>> agent = Agent("openai:gpt-4.1", toolsets=[governed_toolset([shell, http_get], agent_id="ops-agent")])

Every call the model makes submits an action (tool = the tool's name, operation as configured,
params = the validated arguments), waits while it is pending approval, runs the tool when it is
allowed or approved, and reports the result. A refused call does not run: the tool call ends
with PydanticAI's ``ToolFailed`` carrying ``"Faramesh denied this call: <reason>"``, so the model
reads why and adapts instead of retrying (or, with ``raise_on_deny=True``, the run ends with a
:class:`~faramesh.DenyError`). If the server cannot be reached the call raises and the tool does
not run, unless the client is configured to fail open.

The gate is the toolset's ``call_tool``, which PydanticAI calls for every tool of the toolset
after validating the arguments, so it covers function tools, MCP servers and any other toolset
alike.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

import anyio.to_thread
from pydantic_ai import RunContext, Tool
from pydantic_ai.exceptions import ApprovalRequired, CallDeferred, ModelRetry, ToolFailed
from pydantic_ai.messages import ToolReturn
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset, ToolsetTool, WrapperToolset
from pydantic_core import to_jsonable_python

from ...client import ExecutionGovernorClient
from ...models import Action
from .._gate import PendingHook, decide, params_from_input, refusal_error, report

__all__ = ["GovernedToolset", "governed_toolset"]


def _jsonable(value: Any) -> Any:
    """JSON data for params and results; Pydantic models and dataclasses by their fields."""
    return to_jsonable_python(value, fallback=repr)


@dataclass(kw_only=True)
class GovernedToolset(WrapperToolset[Any]):
    """Wraps a PydanticAI toolset so each call is decided by Faramesh first.

    Args:
        wrapped: The toolset to govern (a ``FunctionToolset``, an MCP server, ...).
        client: An :class:`~faramesh.ExecutionGovernorClient` (default: the configured one).
        agent_id: Agent id of the actions (default: the client's ``agent_id``).
        operation: Operation of the actions (default ``"run"``).
        operations: Operation per tool name, for tools whose operation differs
            (``{"http": "get"}``).
        raise_on_deny: Raise :class:`~faramesh.DenyError` (ending the run) instead of failing
            the tool call with the refusal text.
        max_wait_time: Seconds to wait for a human decision (``None``: no limit; default 300).
            When it passes, the call is refused like a denial.
        poll_interval: Seconds between polls while waiting for approval.
        context: Extra context sent with every action; its ``integration`` is ``"pydantic-ai"``
            unless this names another.
        on_pending: Called with the action when it needs approval, before waiting.
        report_results: Report each call's outcome (default True).

    A tool that raises reports a failure (``ModelRetry`` and ``ToolFailed`` included, with
    their message) and the exception goes on to PydanticAI as usual. A tool that defers
    (``CallDeferred``, ``ApprovalRequired``) has not finished, so nothing is reported.
    """

    client: Optional[ExecutionGovernorClient] = None
    agent_id: Optional[str] = None
    operation: str = "run"
    operations: Mapping[str, str] = field(default_factory=dict)
    raise_on_deny: bool = False
    max_wait_time: Optional[float] = 300.0
    poll_interval: Optional[float] = None
    context: Mapping[str, Any] = field(default_factory=dict)
    on_pending: Optional[PendingHook] = None
    report_results: bool = True

    async def call_tool(
        self, name: str, tool_args: Dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        c, action, refusal = await anyio.to_thread.run_sync(
            functools.partial(
                decide,
                self.client,
                agent_id=self.agent_id,
                tool=name,
                operation=self.operations.get(name, self.operation),
                params=params_from_input(_jsonable(tool_args)),
                context={"integration": "pydantic-ai", **self.context},
                timeout=self.max_wait_time,
                poll_interval=self.poll_interval,
                on_pending=self.on_pending,
            )
        )
        if refusal is not None:
            if self.raise_on_deny:
                raise refusal_error(action, refusal)
            raise ToolFailed(refusal)
        try:
            result = await self.wrapped.call_tool(name, tool_args, ctx, tool)
        except (CallDeferred, ApprovalRequired):
            raise
        except (ModelRetry, ToolFailed) as exc:
            await self._report(c, action, failure=f"{type(exc).__name__}: {exc.message}")
            raise
        except Exception as exc:
            await self._report(c, action, error=exc)
            raise
        await self._report(
            c, action, output=result.return_value if isinstance(result, ToolReturn) else result
        )
        return result

    async def _report(
        self,
        client: ExecutionGovernorClient,
        action: Action,
        *,
        output: Any = None,
        error: Optional[BaseException] = None,
        failure: Optional[str] = None,
    ) -> None:
        await anyio.to_thread.run_sync(
            functools.partial(
                report,
                client,
                action,
                enabled=self.report_results,
                output=_jsonable(output),
                error=error,
                failure=failure,
            )
        )


def governed_toolset(
    tools: Sequence[Union[Tool[Any], Callable[..., Any]]],
    *,
    client: Optional[ExecutionGovernorClient] = None,
    agent_id: Optional[str] = None,
    operation: str = "run",
    operations: Optional[Mapping[str, str]] = None,
    raise_on_deny: bool = False,
    max_wait_time: Optional[float] = 300.0,
    poll_interval: Optional[float] = None,
    context: Optional[Mapping[str, Any]] = None,
    on_pending: Optional[PendingHook] = None,
    report_results: bool = True,
) -> GovernedToolset:
    """A governed ``FunctionToolset`` of tool functions or ``Tool`` objects, for
    ``Agent(toolsets=[...])``: the functions are declared exactly as for ``Agent(tools=[...])``
    (with or without a ``RunContext`` first argument). Options as for :class:`GovernedToolset`."""
    wrapped: AbstractToolset[Any] = FunctionToolset(list(tools))
    return GovernedToolset(
        wrapped=wrapped,
        client=client,
        agent_id=agent_id,
        operation=operation,
        operations=dict(operations or {}),
        raise_on_deny=raise_on_deny,
        max_wait_time=max_wait_time,
        poll_interval=poll_interval,
        context=dict(context or {}),
        on_pending=on_pending,
        report_results=report_results,
    )
