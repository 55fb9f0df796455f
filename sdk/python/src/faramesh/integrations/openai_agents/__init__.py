"""OpenAI Agents SDK integration: function tools whose calls Faramesh decides first.

Needs ``openai-agents`` (``pip install "faramesh-sdk[openai-agents]"``).
"""

try:
    from agents import FunctionTool  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'faramesh.integrations.openai_agents needs openai-agents: pip install "faramesh-sdk[openai-agents]"'
    ) from exc

from .._gate import DENIAL_PREFIX
from .tools import govern_function_tool, govern_tools, governed_function_tool

__all__ = ["governed_function_tool", "govern_function_tool", "govern_tools", "DENIAL_PREFIX"]
