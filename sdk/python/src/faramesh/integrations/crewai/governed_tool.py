"""``GovernedTool``: any CrewAI tool, governed by Faramesh.

>>> from faramesh.integrations.crewai import GovernedTool
>>> shell = GovernedTool(ShellTool(), agent_id="ops-crew", operation="run")
>>> agent = Agent(role="ops", goal="...", backstory="...", tools=[shell])

Every call submits an action (tool = the wrapped tool's name, operation as configured, params =
the tool's arguments), waits while it is pending approval, runs the wrapped tool when it is
allowed or approved, and reports the result. A denied call does not run: it returns a CrewAI
``ToolFailure`` whose message, ``"Faramesh denied this call: <reason>"``, is what the agent
reads, and which CrewAI records as a failed tool call (its ``tool_failure_policy`` decides
whether the task goes on). With ``raise_on_deny=True`` a :class:`~faramesh.DenyError` is raised
instead. If the server cannot be reached the call raises and the tool does not run, unless the
client is configured to fail open.

CrewAI runs a tool through its ``_run`` both when the model calls functions natively and when it
writes ``Action:`` / ``Action Input:`` text, so the gate sits there.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from crewai.tools import BaseTool
from crewai.tools.tool_failure import ToolFailure, ToolFailureReason
from pydantic import ConfigDict, Field

from ...client import ExecutionGovernorClient
from ...models import Action
from .._gate import decide, params_from_input, refusal_error, report

__all__ = ["GovernedTool", "wrap_tool", "govern_tools"]


class GovernedTool(BaseTool):
    """Wraps a CrewAI ``BaseTool`` so each call is decided by Faramesh first.

    Args:
        tool: The tool to govern. Its name, description, argument and result schemas,
            ``result_as_answer``, ``max_usage_count``, ``tool_failure_policy`` and
            ``cache_function`` are kept (CrewAI never caches a ``ToolFailure``, so a refusal is
            not replayed from its cache).
        client: An :class:`~faramesh.ExecutionGovernorClient` (default: the configured one).
        agent_id: Agent id of the actions (default: the client's ``agent_id``).
        operation: Operation of the actions (default ``"run"``).
        raise_on_deny: Raise :class:`~faramesh.DenyError` instead of returning the refusal as a
            ``ToolFailure``.
        poll_interval: Seconds between polls while waiting for approval.
        max_wait_time: Seconds to wait for a human decision (``None``: no limit; default 300).
            When it passes, the call is refused like a denial.
        context: Extra context sent with every action; its ``integration`` is ``"crewai"``
            unless this names another.
        on_pending: Called with the action when it needs approval, before waiting.
        report_results: Report each call's outcome (default True). A ``ToolFailure`` returned
            by the wrapped tool is reported as a failure.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tool: BaseTool
    client: Optional[ExecutionGovernorClient] = None
    agent_id: Optional[str] = None
    operation: str = "run"
    raise_on_deny: bool = False
    poll_interval: Optional[float] = None
    max_wait_time: Optional[float] = 300.0
    context: Dict[str, Any] = Field(default_factory=dict)
    on_pending: Optional[Callable[[Action], Any]] = None
    report_results: bool = True

    def __init__(
        self,
        tool: BaseTool,
        client: Optional[ExecutionGovernorClient] = None,
        agent_id: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", tool.name)
        kwargs.setdefault("description", tool.description)
        kwargs.setdefault("args_schema", tool.args_schema)
        kwargs.setdefault("result_schema", tool.result_schema)
        kwargs.setdefault("env_vars", tool.env_vars)
        kwargs.setdefault("result_as_answer", tool.result_as_answer)
        kwargs.setdefault("max_usage_count", tool.max_usage_count)
        kwargs.setdefault("tool_failure_policy", tool.tool_failure_policy)
        kwargs.setdefault("cache_function", tool.cache_function)
        kwargs.update(tool=tool, client=client, agent_id=agent_id)
        super().__init__(**kwargs)

    def _gate(self, params: Dict[str, Any]) -> Tuple[ExecutionGovernorClient, Action, Optional[str]]:
        return decide(
            self.client,
            agent_id=self.agent_id,
            tool=self.tool.name,
            operation=self.operation,
            params=params,
            context={"integration": "crewai", **self.context},
            timeout=self.max_wait_time,
            poll_interval=self.poll_interval,
            on_pending=self.on_pending,
        )

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        params = params_from_input({**kwargs, "args": list(args)} if args else kwargs)
        client, action, refusal = self._gate(params)
        if refusal is not None:
            if self.raise_on_deny:
                raise refusal_error(action, refusal)
            return ToolFailure(
                message=refusal,
                reason=ToolFailureReason.TOOL_REPORTED,
                details={"faramesh_action_id": action.get("id"), "reason_code": action.get("reason_code")},
            )
        try:
            result = self.tool.run(*args, **kwargs)
        except Exception as exc:
            report(client, action, enabled=self.report_results, error=exc)
            raise
        if isinstance(result, ToolFailure):
            report(client, action, enabled=self.report_results, failure=result.as_agent_message())
        else:
            report(client, action, enabled=self.report_results, output=result)
        return result

    async def _arun(self, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._run, *args, **kwargs)


def wrap_tool(
    tool: BaseTool,
    client: Optional[ExecutionGovernorClient] = None,
    agent_id: Optional[str] = None,
    **kwargs: Any,
) -> GovernedTool:
    """``GovernedTool(tool, client, agent_id, **kwargs)``."""
    return GovernedTool(tool, client=client, agent_id=agent_id, **kwargs)


def govern_tools(
    tools: Iterable[BaseTool],
    client: Optional[ExecutionGovernorClient] = None,
    agent_id: Optional[str] = None,
    **kwargs: Any,
) -> List[GovernedTool]:
    """Wrap every tool of a list (same options for all)."""
    return [GovernedTool(t, client=client, agent_id=agent_id, **kwargs) for t in tools]
