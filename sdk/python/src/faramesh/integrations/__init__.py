"""Framework integrations; each needs its framework, installed as an extra of faramesh-sdk
(``pip install "faramesh-sdk[<extra>]"``):

- ``faramesh.integrations.langchain``: LangChain tools (extra ``langchain``)
- ``faramesh.integrations.langgraph``: LangGraph's ``ToolNode`` (extra ``langgraph``)
- ``faramesh.integrations.openai_agents``: OpenAI Agents SDK function tools (extra ``openai-agents``)
- ``faramesh.integrations.pydantic_ai``: PydanticAI toolsets (extra ``pydantic-ai``)
- ``faramesh.integrations.crewai``: CrewAI tools (extra ``crewai``)
"""
