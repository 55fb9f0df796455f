"""``GovernedTool``: any LangChain tool, governed by Faramesh.

>>> from faramesh.integrations.langchain import GovernedTool
>>> shell = GovernedTool(ShellTool(), agent_id="my-agent", operation="run")
>>> agent_tools = [shell]        # use it wherever the original tool was used

Every call submits an action (tool = the wrapped tool's name, operation as configured, params =
the tool input), waits while it is pending approval, runs the wrapped tool when it is allowed or
approved, and reports the result. A denied call does not run: the agent gets the text
``"Faramesh denied this call: <reason>"`` as the tool's answer (or, with
``raise_on_deny=True``, a :class:`GovernedToolDenied` exception carrying that text).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict, Field

from ...api import get_client
from ...client import ExecutionGovernorClient
from ...exceptions import DenyError, FarameshTimeoutError
from ...govern import await_permission, report_outcome, to_jsonable
from ...models import Action

__all__ = ["GovernedTool", "GovernedToolDenied", "wrap_tool", "govern_tools", "DENIAL_PREFIX"]

#: Start of the refusal text a denied call returns.
DENIAL_PREFIX = "Faramesh denied this call"

ToolInput = Union[str, Dict[str, Any]]


class GovernedToolDenied(DenyError, ToolException):
    """Raised by a :class:`GovernedTool` with ``raise_on_deny=True`` when a call is refused.

    Its message is the refusal text; it is both a :class:`~faramesh.DenyError` and a LangChain
    ``ToolException`` (so ``handle_tool_error`` on an enclosing tool can turn it into text).
    """


class GovernedTool(BaseTool):
    """Wraps a LangChain ``BaseTool`` so each call is decided by Faramesh first.

    Args:
        tool: The tool to govern. Its name, description and argument schema are kept.
        client: An :class:`~faramesh.ExecutionGovernorClient` (default: the configured one).
        agent_id: Agent id of the actions (default: the client's ``agent_id``).
        operation: Operation of the actions (default ``"run"``).
        raise_on_deny: Raise :class:`GovernedToolDenied` instead of returning the refusal text.
        poll_interval: Seconds between polls while waiting for approval.
        max_wait_time: Seconds to wait for a human decision (``None``: no limit; default 300).
            When it passes, the call is refused like a denial.
        context: Extra context sent with every action.
        on_pending: Called with the action when it needs approval, before waiting.
        report_results: Report each call's outcome (default True).
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
        if tool.args_schema is not None:
            kwargs.setdefault("args_schema", tool.args_schema)
        kwargs.setdefault("return_direct", tool.return_direct)
        super().__init__(tool=tool, client=client, agent_id=agent_id, **kwargs)

    # The wrapped tool's interface, unchanged, for models that bind tools.
    @property
    def args(self) -> Dict[str, Any]:
        return self.tool.args

    @property
    def tool_call_schema(self) -> Any:
        return self.tool.tool_call_schema

    def get_input_schema(self, config: Optional[RunnableConfig] = None) -> Any:
        return self.tool.get_input_schema(config)

    # ------------------------------------------------------------------ governance

    def _client(self) -> ExecutionGovernorClient:
        return self.client or get_client()

    @staticmethod
    def _tool_input(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> ToolInput:
        if len(args) == 1 and not kwargs:
            value = args[0]
            return value if isinstance(value, (str, dict)) else str(value)
        if args:
            return {**kwargs, "args": list(args)}
        return dict(kwargs)

    @staticmethod
    def _params(tool_input: ToolInput) -> Dict[str, Any]:
        if isinstance(tool_input, dict):
            data = to_jsonable(tool_input)
            return data if isinstance(data, dict) else {"input": data}
        return {"input": tool_input}

    def _gate(self, tool_input: ToolInput) -> Tuple[ExecutionGovernorClient, Action, Optional[str]]:
        """Submit and wait. Returns (client, action, refusal); refusal is None when the call
        may run."""
        client = self._client()
        action = client.submit_action(
            agent_id=self.agent_id or client.config.agent_id,
            tool=self.tool.name,
            operation=self.operation,
            params=self._params(tool_input),
            context={**self.context, "integration": "langchain"},
        )
        try:
            action = await_permission(
                client,
                action,
                timeout=self.max_wait_time,
                poll_interval=self.poll_interval,
                on_pending=self.on_pending,
            )
        except DenyError as exc:
            reason = exc.reason or "denied"
            return client, exc.action or action, f"{DENIAL_PREFIX}: {reason}"
        except FarameshTimeoutError as exc:
            current = exc.action or action
            if current.get("status") == "timeout":
                refusal = f"{DENIAL_PREFIX}: the approval request expired before anyone decided"
            else:
                refusal = (
                    f"{DENIAL_PREFIX}: no one approved it within {self.max_wait_time} seconds "
                    f"(action {current.get('id')} is still pending approval)"
                )
            return client, current, refusal
        return client, action, None

    def _refuse(self, action: Action, refusal: str) -> str:
        if self.raise_on_deny:
            raise GovernedToolDenied(
                refusal,
                action=action,
                reason=action.get("reason"),
                reason_code=str(action.get("reason_code") or ""),
            )
        return refusal

    def _report(
        self,
        client: ExecutionGovernorClient,
        action: Action,
        *,
        output: Any = None,
        error: Optional[BaseException] = None,
    ) -> None:
        if not self.report_results or action.get("fail_open"):
            return
        if error is None:
            report_outcome(client, action, success=True, output=output)
        else:
            report_outcome(client, action, success=False, error=f"{type(error).__name__}: {error}")

    def _run(self, *args: Any, run_manager: Optional[CallbackManagerForToolRun] = None, **kwargs: Any) -> Any:
        tool_input = self._tool_input(args, kwargs)
        client, action, refusal = self._gate(tool_input)
        if refusal is not None:
            return self._refuse(action, refusal)
        callbacks = run_manager.get_child() if run_manager is not None else None
        try:
            result = self.tool.run(tool_input, callbacks=callbacks)
        except Exception as exc:
            self._report(client, action, error=exc)
            raise
        self._report(client, action, output=result)
        return result

    async def _arun(
        self, *args: Any, run_manager: Optional[AsyncCallbackManagerForToolRun] = None, **kwargs: Any
    ) -> Any:
        tool_input = self._tool_input(args, kwargs)
        client, action, refusal = await asyncio.to_thread(self._gate, tool_input)
        if refusal is not None:
            return self._refuse(action, refusal)
        callbacks = run_manager.get_child() if run_manager is not None else None
        try:
            result = await self.tool.arun(tool_input, callbacks=callbacks)
        except Exception as exc:
            await asyncio.to_thread(self._report, client, action, error=exc)
            raise
        await asyncio.to_thread(self._report, client, action, output=result)
        return result


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
