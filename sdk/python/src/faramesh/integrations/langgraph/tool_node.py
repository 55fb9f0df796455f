"""``GovernedToolNode``: LangGraph's ``ToolNode`` with every tool governed by Faramesh.

>>> from faramesh.integrations.langgraph import GovernedToolNode
>>> graph.add_node("tools", GovernedToolNode([shell, http], agent_id="ops-agent"))

Each tool is wrapped in :class:`~faramesh.integrations.langchain.GovernedTool`, so a call is
submitted as an action (tool = the tool's name, params = the arguments the model sent; state,
store, runtime and tool-call id that LangGraph injects are left out), waits while it is pending
approval, runs when allowed or approved, and is reported. A refused call does not run: the
model gets a ``ToolMessage`` reading ``"Faramesh denied this call: <reason>"``. Everything else
(state injection, ``Command`` results, error handling, parallel calls) is the ``ToolNode``'s own.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Union

from langchain_core.tools import BaseTool
from langchain_core.tools import tool as create_tool
from langgraph.prebuilt import ToolNode

from ...client import ExecutionGovernorClient
from ...models import Action
from ..langchain import GovernedTool

__all__ = ["GovernedToolNode"]


class GovernedToolNode(ToolNode):
    """A ``ToolNode`` whose tools are decided by Faramesh before they run.

    Args:
        tools: LangChain tools or plain functions, as for ``ToolNode``. Tools that are already
            a ``GovernedTool`` are used as they are.
        client: An :class:`~faramesh.ExecutionGovernorClient` (default: the configured one).
        agent_id: Agent id of the actions (default: the client's ``agent_id``).
        operation: Operation of the actions (default ``"run"``).
        operations: Operation per tool name, for tools whose operation differs
            (``{"http": "get"}``).
        raise_on_deny: Raise :class:`~faramesh.integrations.langchain.GovernedToolDenied`
            instead of answering with the refusal text (the node's ``handle_tool_errors``
            then decides whether it ends the run).
        max_wait_time: Seconds to wait for a human decision (``None``: no limit; default 300).
            When it passes, the call is refused like a denial.
        poll_interval: Seconds between polls while waiting for approval.
        context: Extra context sent with every action; its ``integration`` is ``"langgraph"``
            unless this names another.
        on_pending: Called with the action when it needs approval, before waiting.
        report_results: Report each call's outcome (default True).
        **tool_node_options: Passed to ``ToolNode`` (``name``, ``handle_tool_errors``,
            ``messages_key``, ``wrap_tool_call``...).
    """

    def __init__(
        self,
        tools: Sequence[Union[BaseTool, Callable[..., Any]]],
        *,
        client: Optional[ExecutionGovernorClient] = None,
        agent_id: Optional[str] = None,
        operation: str = "run",
        operations: Optional[Mapping[str, str]] = None,
        raise_on_deny: bool = False,
        max_wait_time: Optional[float] = 300.0,
        poll_interval: Optional[float] = None,
        context: Optional[Mapping[str, Any]] = None,
        on_pending: Optional[Callable[[Action], Any]] = None,
        report_results: bool = True,
        **tool_node_options: Any,
    ) -> None:
        per_tool = dict(operations or {})

        def govern(t: Union[BaseTool, Callable[..., Any]]) -> GovernedTool:
            if isinstance(t, GovernedTool):
                return t
            base = t if isinstance(t, BaseTool) else create_tool(t)
            return GovernedTool(
                base,
                client=client,
                agent_id=agent_id,
                operation=per_tool.get(base.name, operation),
                raise_on_deny=raise_on_deny,
                max_wait_time=max_wait_time,
                poll_interval=poll_interval,
                context={"integration": "langgraph", **(context or {})},
                on_pending=on_pending,
                report_results=report_results,
            )

        super().__init__([govern(t) for t in tools], **tool_node_options)
