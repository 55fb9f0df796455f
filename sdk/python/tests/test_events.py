"""`tail_events`: live events, filters, Last-Event-ID, reconnect and resume across a restart."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Dict, List

import pytest

from conftest import make_client
from faramesh._sse import SSEMessage, parse_sse
from support import WAIT_S, Server, unique, wait_until


def _take(events: Any, n: int) -> List[Dict[str, Any]]:
    return [next(events) for _ in range(n)]


def test_live_events_arrive(server: Server) -> None:
    agent = unique()
    with make_client(server.url) as c:
        events = c.tail_events(agent_id=agent, timeout=WAIT_S)
        try:
            action = c.submit_action(agent, "deploy", "x", {})
            created = next(events)
            c.approve_action(action["id"])
            updated = next(events)
        finally:
            events.close()
    assert created["type"] == "action.created"
    assert created["action_id"] == action["id"]
    assert created["data"]["status"] == "pending_approval"
    assert created["data"]["agent_id"] == agent
    assert updated["type"] == "action.updated"
    assert updated["data"]["status"] == "approved"
    assert int(updated["event_id"]) > int(created["event_id"])
    assert created["timestamp"].endswith("Z")


def test_consumer_thread_sees_events_as_they_happen(server: Server) -> None:
    agent = unique()
    received: "queue.Queue[Dict[str, Any]]" = queue.Queue()

    with make_client(server.url) as c:

        def consume() -> None:
            for event in c.tail_events(agent_id=agent, stop_after=3, timeout=WAIT_S):
                received.put(event)

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        action = c.submit_action(agent, "calc", "add", {})
        assert received.get(timeout=WAIT_S)["data"]["id"] == action["id"]
        c.start_action(action["id"])
        assert received.get(timeout=WAIT_S)["data"]["status"] == "executing"
        c.report_result(action["id"], True)
        assert received.get(timeout=WAIT_S)["data"]["status"] == "succeeded"
        thread.join(WAIT_S)
        assert not thread.is_alive()


def test_filters_and_event_types(server: Server) -> None:
    agent = unique()
    with make_client(server.url) as c:
        mine = c.submit_action(agent, "deploy", "x", {})
        other = c.submit_action(agent, "deploy", "y", {})
        c.approve_action(mine["id"])
        c.deny_action(other["id"])
        only_mine = list(c.tail_events(action_id=mine["id"], stop_after=2, timeout=WAIT_S))
        assert [e["data"]["id"] for e in only_mine] == [mine["id"], mine["id"]]
        assert [e["data"]["status"] for e in only_mine] == ["pending_approval", "approved"]
        updates = list(
            c.tail_events(agent_id=agent, event_types=["action.updated"], stop_after=2, timeout=WAIT_S)
        )
        assert [e["data"]["status"] for e in updates] == ["approved", "denied"]
        denied = list(c.tail_events(agent_id=agent, status="denied", stop_after=1, timeout=WAIT_S))
        assert denied[0]["data"]["id"] == other["id"]


def test_explicit_last_event_id_resumes_after_that_event(server_factory: Callable[..., Server]) -> None:
    srv = server_factory("resume")
    agent = unique()
    with make_client(srv.url) as c:
        ids = [c.submit_action(agent, "calc", "add", {"n": n})["id"] for n in range(15)]
        everything = list(c.tail_events(last_event_id=0, stop_after=15, timeout=WAIT_S))
        assert [e["data"]["id"] for e in everything] == ids
        cut = everything[4]["event_id"]
        rest = list(c.tail_events(last_event_id=cut, stop_after=10, timeout=WAIT_S))
        assert [e["data"]["id"] for e in rest] == ids[5:]
        # Without Last-Event-ID the server replays only its last 10 messages.
        recent = list(c.tail_events(stop_after=10, timeout=WAIT_S))
        assert [e["data"]["id"] for e in recent] == ids[5:]


def test_resume_after_a_server_restart_loses_and_repeats_nothing(
    server_factory: Callable[..., Server],
) -> None:
    srv = server_factory("restart")
    agent = unique()
    with make_client(srv.url, retry_backoff_factor=0.05) as c:
        before = [c.submit_action(agent, "calc", "add", {"n": n})["id"] for n in range(3)]
        events = c.tail_events(agent_id=agent, timeout=WAIT_S * 2)
        try:
            first = _take(events, 3)
            assert [e["data"]["id"] for e in first] == before

            # While this client is between two reads, the server restarts on the same database
            # and port, and more than the on-connect replay window (10) of events happens.
            srv.restart()
            after = [c.submit_action(agent, "calc", "add", {"n": n})["id"] for n in range(12)]

            second = _take(events, 12)
        finally:
            events.close()
    assert [e["data"]["id"] for e in second] == after
    seen = [int(e["event_id"]) for e in first + second]
    assert seen == sorted(set(seen)), "event ids must increase without repeats"


def test_reconnects_while_the_server_is_down(
    server_factory: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="faramesh")
    srv = server_factory("down")
    agent = unique()
    received: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    client = make_client(srv.url, retry_backoff_factor=0.05, max_backoff=0.5)

    def consume() -> None:
        for event in client.tail_events(agent_id=agent, stop_after=4, timeout=WAIT_S * 2):
            received.put(event)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        first = client.submit_action(agent, "calc", "add", {})
        assert received.get(timeout=WAIT_S)["data"]["id"] == first["id"]

        srv.stop()
        # The consumer notices and keeps trying to reconnect (connection refused meanwhile).
        wait_until(
            lambda: sum("reconnecting" in r.getMessage() for r in caplog.records) >= 2,
            "reconnect attempts while the server is down",
        )
        srv.start()
        later = [client.submit_action(agent, "calc", "add", {"n": n})["id"] for n in range(3)]
        got = [received.get(timeout=WAIT_S)["data"]["id"] for _ in range(3)]
        assert got == later
        thread.join(WAIT_S)
        assert not thread.is_alive()
        assert received.empty(), "no event may be delivered twice"
    finally:
        client.close()


def test_sse_parser() -> None:
    lines = [
        ": ping",
        "id: 7",
        "event: update",
        'data: {"a":',
        "data: 1}",
        "",
        "retry: 2500",
        "",
        "id: 8",
        "",
        "data:no-space",
        "",
        "data: unterminated",
    ]
    messages = list(parse_sse(lines))
    assert messages == [
        SSEMessage(comment="ping"),
        SSEMessage(data='{"a":\n1}', event="update", id="7"),
        SSEMessage(retry=2500),
        SSEMessage(id="8"),
        SSEMessage(data="no-space"),
    ]
