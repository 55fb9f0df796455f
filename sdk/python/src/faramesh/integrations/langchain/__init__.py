"""LangChain integration: :class:`GovernedTool` wraps any LangChain tool.

Needs ``langchain-core`` (``pip install "faramesh-sdk[langchain]"``).
"""

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'faramesh.integrations.langchain needs langchain-core: pip install "faramesh-sdk[langchain]"'
    ) from exc

from .governed_tool import DENIAL_PREFIX, GovernedTool, GovernedToolDenied, govern_tools, wrap_tool

__all__ = ["GovernedTool", "GovernedToolDenied", "wrap_tool", "govern_tools", "DENIAL_PREFIX"]
