"""LangGraph integration: :class:`GovernedToolNode`, a ``ToolNode`` whose tools Faramesh governs.

Needs ``langgraph`` (``pip install "faramesh-sdk[langgraph]"``).
"""

try:
    from langgraph.prebuilt import ToolNode  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'faramesh.integrations.langgraph needs langgraph: pip install "faramesh-sdk[langgraph]"'
    ) from exc

from ..langchain import DENIAL_PREFIX, GovernedTool, GovernedToolDenied
from .tool_node import GovernedToolNode

__all__ = ["GovernedToolNode", "GovernedTool", "GovernedToolDenied", "DENIAL_PREFIX"]
