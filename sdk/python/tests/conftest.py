"""Fixtures: real servers (open and with a token) and clients pointed at them; which test
modules this run collects."""

from __future__ import annotations

import os
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

import faramesh
from faramesh import ExecutionGovernorClient
from support import Server, unique

ADMIN_TOKEN = "secret"

#: The suite of this run. CrewAI's pins conflict with the other frameworks', so run-tests runs
#: the modules matching CREWAI_MODULES in a virtualenv of their own (FARAMESH_SDK_SUITE=crewai)
#: and every other module in the main one (the default).
SUITE = os.environ.get("FARAMESH_SDK_SUITE", "main")
CREWAI_MODULES = "test_crewai*.py"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> Optional[bool]:
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        if fnmatch(collection_path.name, CREWAI_MODULES) != (SUITE == "crewai"):
            return True
    return None


def make_client(url: str, **options: object) -> ExecutionGovernorClient:
    """A client with short waits: the suite never depends on the defaults' timing."""
    settings: dict = dict(timeout=15.0, max_retries=3, retry_backoff_factor=0.05, poll_interval=0.05)
    settings.update(options)
    return ExecutionGovernorClient(url, **settings)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One open server (no token) shared by the tests that only add actions of their own."""
    srv = Server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server started with FARAMESH_TOKEN=secret in its environment."""
    srv = Server(tmp_path_factory.mktemp("auth-server"), env={"FARAMESH_TOKEN": ADMIN_TOKEN})
    yield srv
    srv.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers of one's own (stopped after the test)."""
    started: List[Server] = []

    def start(name: str = "own", **kwargs: object) -> Server:
        srv = Server(tmp_path / name, **kwargs)  # type: ignore[arg-type]
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def agent() -> str:
    """An agent id no other test uses, so list filters see only this test's actions."""
    return unique("agent")


@pytest.fixture
def client(server: Server, agent: str) -> Iterator[ExecutionGovernorClient]:
    c = make_client(server.url, agent_id=agent)
    yield c
    c.close()


@pytest.fixture
def configured(server: Server, agent: str) -> Iterator[ExecutionGovernorClient]:
    """The module-level functions pointed at the shared server."""
    c = faramesh.configure(
        base_url=server.url,
        token="",
        agent_id=agent,
        timeout=15.0,
        max_retries=3,
        retry_backoff_factor=0.05,
        poll_interval=0.05,
        fail_open=False,
        raise_on_deny=False,
    )
    yield c
    faramesh.set_client(ExecutionGovernorClient(make_client(server.url).config))
