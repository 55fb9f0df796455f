"""A minimal OTLP/HTTP trace receiver for tests: decodes each export request with the
official protobuf messages (opentelemetry-proto) and appends one JSON line per span to a file.

    otlp_receiver.py SPANS_FILE

Listens on 127.0.0.1 on a free port and prints "listening on http://127.0.0.1:PORT" once
ready. POST /v1/traces takes application/x-protobuf ExportTraceServiceRequest and answers
with an empty ExportTraceServiceResponse; anything else is a 404 or a 415.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

SPANS = sys.argv[1]


def value(v: AnyValue):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attributes(items) -> dict:
    return {a.key: value(a.value) for a in items}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        if self.headers.get("Content-Type", "").split(";")[0] != "application/x-protobuf":
            self.send_error(415)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        lines = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    lines.append(
                        json.dumps(
                            {
                                "name": span.name,
                                "kind": span.kind,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "status_code": span.status.code,
                                "attributes": attributes(span.attributes),
                                "service": resource.get("service.name"),
                                "scope": scope_spans.scope.name,
                            }
                        )
                    )
        with open(SPANS, "a", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
