"""Each framework integration says which extra to install when its framework is missing."""

from __future__ import annotations

import importlib
import sys

import pytest


@pytest.mark.parametrize(
    "module, framework, extra",
    [
        ("langchain", "langchain_core", "langchain"),
        ("langgraph", "langgraph.prebuilt", "langgraph"),
        ("openai_agents", "agents", "openai-agents"),
        ("pydantic_ai", "pydantic_ai.toolsets", "pydantic-ai"),
        ("crewai", "crewai.tools", "crewai"),
    ],
)
def test_a_missing_framework_names_the_extra(
    module: str, framework: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"faramesh.integrations.{module}"
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, framework, None)  # the integration's first import fails
    with pytest.raises(ImportError) as info:
        importlib.import_module(name)
    assert f'pip install "faramesh-sdk[{extra}]"' in str(info.value)
