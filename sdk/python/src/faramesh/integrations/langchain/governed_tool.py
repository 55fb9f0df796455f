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
from typing import (
    Annotated,
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Optional,
    Tuple,
    Union,
    get_args,
    get_origin,
)

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, InjectedToolCallId, ToolException
from langchain_core.tools.base import get_all_basemodel_annotations
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ...client import ExecutionGovernorClient
from ...exceptions import DenyError
from ...models import Action
from .._gate import DENIAL_PREFIX, decide, params_from_input, refusal_error, report

__all__ = ["GovernedTool", "GovernedToolDenied", "wrap_tool", "govern_tools", "DENIAL_PREFIX"]

ToolInput = Union[str, Dict[str, Any]]


def _field_names(schema: Any) -> FrozenSet[str]:
    """Argument names of a tool schema (a Pydantic model or a JSON schema)."""
    if isinstance(schema, dict):
        properties = schema.get("properties")
        return frozenset(properties) if isinstance(properties, dict) else frozenset()
    fields = getattr(schema, "model_fields", None)
    if fields is None:
        fields = getattr(schema, "__fields__", None)
    return frozenset(fields) if isinstance(fields, dict) else frozenset()


def _is_call_id(annotation: Any) -> bool:
    if get_origin(annotation) is not Annotated:
        return False
    return any(m is InjectedToolCallId or isinstance(m, InjectedToolCallId) for m in get_args(annotation)[1:])


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
        context: Extra context sent with every action; its ``integration`` is ``"langchain"``
            unless this names another.
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

    # (injected argument names, names of those that take the tool-call id), worked out once.
    _injected: Optional[Tuple[FrozenSet[str], Tuple[str, ...]]] = PrivateAttr(default=None)

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

    @staticmethod
    def _tool_input(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> ToolInput:
        if len(args) == 1 and not kwargs:
            value = args[0]
            return value if isinstance(value, (str, dict)) else str(value)
        if args:
            return {**kwargs, "args": list(args)}
        return dict(kwargs)

    def _injected_arguments(self) -> Tuple[FrozenSet[str], Tuple[str, ...]]:
        """Arguments a framework injects rather than the model (LangGraph's state, store and
        runtime, the tool-call id): those of the input schema missing from the tool-call
        schema. Also which of them take the tool-call id."""
        if self._injected is None:
            injected = _field_names(self.tool.get_input_schema()) - _field_names(self.tool.tool_call_schema)
            schema = self.tool.args_schema
            call_id: Tuple[str, ...] = ()
            if isinstance(schema, type) and issubclass(schema, BaseModel):
                annotations = get_all_basemodel_annotations(schema)
                call_id = tuple(name for name, annotation in annotations.items() if _is_call_id(annotation))
            self._injected = (injected, call_id)
        return self._injected

    def _params(self, tool_input: ToolInput) -> Dict[str, Any]:
        """The action's params: what the model sent, without injected arguments."""
        if isinstance(tool_input, dict):
            injected, _ = self._injected_arguments()
            tool_input = {k: v for k, v in tool_input.items() if k not in injected}
        return params_from_input(tool_input)

    def _wrapped_input(self, tool_input: ToolInput) -> Tuple[ToolInput, Optional[str]]:
        """The input for the wrapped tool and the tool-call id to give it: a tool with an
        ``InjectedToolCallId`` argument insists on receiving the id itself."""
        if not isinstance(tool_input, dict):
            return tool_input, None
        _, call_id_names = self._injected_arguments()
        present = [name for name in call_id_names if name in tool_input]
        if not present:
            return tool_input, None
        rest = {k: v for k, v in tool_input.items() if k not in present}
        return rest, tool_input[present[0]]

    def _gate(self, tool_input: ToolInput) -> Tuple[ExecutionGovernorClient, Action, Optional[str]]:
        """Submit and wait. Returns (client, action, refusal); refusal is None when the call
        may run."""
        return decide(
            self.client,
            agent_id=self.agent_id,
            tool=self.tool.name,
            operation=self.operation,
            params=self._params(tool_input),
            context={"integration": "langchain", **self.context},
            timeout=self.max_wait_time,
            poll_interval=self.poll_interval,
            on_pending=self.on_pending,
        )

    def _refuse(self, action: Action, refusal: str) -> str:
        if self.raise_on_deny:
            raise refusal_error(action, refusal, GovernedToolDenied)
        return refusal

    def _report(
        self,
        client: ExecutionGovernorClient,
        action: Action,
        *,
        output: Any = None,
        error: Optional[BaseException] = None,
    ) -> None:
        if isinstance(output, ToolMessage):
            # The wrapped tool answered the tool call itself (it was given the call id).
            if output.status == "error":
                report(client, action, enabled=self.report_results, failure=str(output.content))
                return
            output = output.content
        report(client, action, enabled=self.report_results, output=output, error=error)

    def _run(self, *args: Any, run_manager: Optional[CallbackManagerForToolRun] = None, **kwargs: Any) -> Any:
        tool_input = self._tool_input(args, kwargs)
        client, action, refusal = self._gate(tool_input)
        if refusal is not None:
            return self._refuse(action, refusal)
        callbacks = run_manager.get_child() if run_manager is not None else None
        wrapped_input, call_id = self._wrapped_input(tool_input)
        try:
            result = self.tool.run(wrapped_input, callbacks=callbacks, tool_call_id=call_id)
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
        wrapped_input, call_id = self._wrapped_input(tool_input)
        try:
            result = await self.tool.arun(wrapped_input, callbacks=callbacks, tool_call_id=call_id)
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
