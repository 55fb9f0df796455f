"""CrewAI integration: :class:`GovernedTool` wraps any CrewAI tool.

Needs ``crewai`` (``pip install "faramesh-sdk[crewai]"``).
"""

try:
    from crewai.tools import BaseTool  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'faramesh.integrations.crewai needs crewai: pip install "faramesh-sdk[crewai]"'
    ) from exc

from .._gate import DENIAL_PREFIX
from .governed_tool import GovernedTool, govern_tools, wrap_tool

__all__ = ["GovernedTool", "wrap_tool", "govern_tools", "DENIAL_PREFIX"]
