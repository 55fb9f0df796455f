"""The SDK sends the agent's W3C trace context (``traceparent``) with every request made inside
an OpenTelemetry span, and nothing outside one. A recording proxy in front of the real server
sees the headers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from faramesh import ExecutionGovernorClient

from support import Server


class RecordingProxy:
    """Forwards every request to the server and keeps each request's headers."""

    def __init__(self, target: str) -> None:
        self.seen: List[Dict[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                proxy.seen.append({k.lower(): v for k, v in self.headers.items()})
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(self.command, target + self.path, headers=headers, content=body)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(server: Server) -> Iterator[RecordingProxy]:
    p = RecordingProxy(server.url)
    yield p
    p.close()


def test_requests_inside_a_span_carry_its_trace_context(proxy: RecordingProxy, agent: str) -> None:
    tracer = TracerProvider().get_tracer("agent")
    client = ExecutionGovernorClient(base_url=proxy.url, token="", agent_id=agent)
    with tracer.start_as_current_span("agent step") as span:
        action = client.submit_action("http", "get", {"url": "https://example.com"})
        client.get_action(action["id"])
        context = span.get_span_context()
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    assert [h.get("traceparent") for h in proxy.seen] == [expected, expected]

    proxy.seen.clear()
    client.list_actions(agent_id=agent)
    assert proxy.seen and "traceparent" not in proxy.seen[0], "no span, no header"

    # A header the application configured wins over the span's.
    configured = ExecutionGovernorClient(
        base_url=proxy.url, token="", agent_id=agent, headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    )
    proxy.seen.clear()
    with tracer.start_as_current_span("another step"):
        configured.list_actions(agent_id=agent)
    assert proxy.seen[0]["traceparent"] == "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    client.close()
    configured.close()


def test_a_span_context_is_sent_without_a_w3c_propagator(
    proxy: RecordingProxy, agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import propagate
    from opentelemetry.propagators.composite import CompositePropagator

    # An application whose propagator writes another format (here: none at all).
    monkeypatch.setattr(propagate, "_HTTP_TEXT_FORMAT", CompositePropagator([]))
    tracer = TracerProvider().get_tracer("agent")
    client = ExecutionGovernorClient(base_url=proxy.url, token="", agent_id=agent)
    with tracer.start_as_current_span("agent step") as span:
        client.list_actions(agent_id=agent)
        context = span.get_span_context()
    flags = f"{int(context.trace_flags):02x}"
    assert proxy.seen[0]["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"
    client.close()
