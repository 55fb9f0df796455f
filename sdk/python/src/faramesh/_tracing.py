"""OpenTelemetry context propagation: when the application has a current OpenTelemetry span,
each request to the Faramesh server carries its W3C trace context (``traceparent``, and
``tracestate`` when it has one), so the server's spans of the call join the agent's trace.

``opentelemetry-api`` is optional: without it (or if anything about it fails) no header is
added and nothing else changes. The application's global propagator is used first; when it
writes no ``traceparent`` (another format is configured) and the current span is valid, the
header is formatted here.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

_api: Optional[Any] = None
_loaded = False


def _otel() -> Optional[Any]:
    """The ``opentelemetry`` modules used here, loaded once; None when not installed."""
    global _api, _loaded
    if not _loaded:
        _loaded = True
        try:
            from opentelemetry import propagate, trace

            _api = (propagate, trace)
        except Exception:  # not installed, or broken: propagate nothing
            _api = None
    return _api


def trace_headers() -> Dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span; empty without one."""
    api = _otel()
    if api is None:
        return {}
    propagate, trace = api
    carrier: Dict[str, str] = {}
    try:
        propagate.inject(carrier)
        if "traceparent" not in carrier:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                carrier["traceparent"] = (
                    f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
                )
                state = context.trace_state.to_header() if context.trace_state else ""
                if state:
                    carrier["tracestate"] = state
    except Exception:  # a misbehaving propagator must never break a call to Faramesh
        return {}
    return {key: carrier[key] for key in ("traceparent", "tracestate") if key in carrier}
