"""PydanticAI integration: :class:`GovernedToolset`, a toolset whose calls Faramesh decides first.

Needs ``pydantic-ai-slim`` (``pip install "faramesh-sdk[pydantic-ai]"``; the full ``pydantic-ai``
package depends on it, so it does as well).
"""

try:
    from pydantic_ai.toolsets import WrapperToolset  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'faramesh.integrations.pydantic_ai needs pydantic-ai-slim: pip install "faramesh-sdk[pydantic-ai]"'
    ) from exc

from .._gate import DENIAL_PREFIX
from .toolset import GovernedToolset, governed_toolset

__all__ = ["GovernedToolset", "governed_toolset", "DENIAL_PREFIX"]
