"""A response lost after the server acted: the SDK retries without duplicating anything."""

from __future__ import annotations

import json

from conftest import make_client
from support import DroppingProxy, Server, unique


def test_submit_retry_reuses_the_idempotency_key_and_creates_one_action(server: Server) -> None:
    proxy = DroppingProxy(server.url, lambda method, path: method == "POST" and path == "/v1/actions")
    agent = unique()
    try:
        with make_client(proxy.url, max_retries=3, retry_backoff_factor=0.01) as c:
            action = c.submit_action(agent, "calc", "add", {"a": 1, "b": 2})
    finally:
        proxy.close()

    posts = [r for r in proxy.seen if r[0] == "POST" and r[1] == "/v1/actions"]
    assert len(posts) == 2, "the first answer was dropped, so the SDK must have retried once"
    keys = [
        next(v for k, v in headers.items() if k.lower() == "idempotency-key") for _, _, headers, _ in posts
    ]
    assert keys[0] == keys[1]
    assert posts[0][3] == posts[1][3]  # the same body

    # The server did act on the first attempt; the retry returned that very action.
    assert len(proxy.dropped) == 1
    dropped_status, dropped_body = proxy.dropped[0][2], proxy.dropped[0][3]
    assert dropped_status == 200
    assert json.loads(dropped_body)["id"] == action["id"]

    with make_client(server.url) as direct:
        stored = direct.list_actions(agent_id=agent)
    assert [a["id"] for a in stored] == [action["id"]]


def test_each_submit_call_has_its_own_key(server: Server) -> None:
    proxy = DroppingProxy(server.url, lambda method, path: False)
    agent = unique()
    try:
        with make_client(proxy.url) as c:
            c.submit_action(agent, "calc", "add", {"a": 1})
            c.submit_action(agent, "calc", "add", {"a": 1})
    finally:
        proxy.close()
    keys = {
        next(v for k, v in headers.items() if k.lower() == "idempotency-key")
        for method, path, headers, _ in proxy.seen
        if method == "POST"
    }
    assert len(keys) == 2
    with make_client(server.url) as direct:
        assert len(direct.list_actions(agent_id=agent)) == 2


def test_a_retried_approval_whose_first_answer_was_lost_succeeds(server: Server) -> None:
    with make_client(server.url) as direct:
        pending = direct.submit_action(unique(), "deploy", "x", {})
    proxy = DroppingProxy(server.url, lambda method, path: path.endswith("/approval"))
    try:
        with make_client(proxy.url, retry_backoff_factor=0.01) as c:
            approved = c.approve_action(pending["id"], reason="ok")
    finally:
        proxy.close()
    # The first POST approved it; the retry got 409 and the SDK confirmed its own approval.
    assert approved["status"] == "approved"
    assert [r[1].endswith("/approval") for r in proxy.seen].count(True) == 2


def test_a_retried_result_report_whose_first_answer_was_lost_succeeds(server: Server) -> None:
    with make_client(server.url) as direct:
        action = direct.submit_action(unique(), "calc", "add", {})
    proxy = DroppingProxy(server.url, lambda method, path: path.endswith("/result"))
    try:
        with make_client(proxy.url, retry_backoff_factor=0.01) as c:
            done = c.report_result(action["id"], True, output=3)
    finally:
        proxy.close()
    assert done["status"] == "succeeded"
    assert done["result"] == 3
