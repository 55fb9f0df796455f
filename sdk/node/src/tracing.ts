/**
 * OpenTelemetry context propagation: when the application has a current OpenTelemetry span,
 * every request to the Faramesh server carries the W3C trace context (`traceparent`, and
 * `tracestate` when the span has one), so the server's spans join the agent's trace.
 *
 * `@opentelemetry/api` is an optional peer dependency. It is loaded lazily, with `require`
 * resolved from the application (its entry script, then the working directory, then, in the
 * CommonJS build, this SDK's own location), never imported: without it (or if loading it fails
 * in any way) no header is added and nothing else changes.
 *
 * The headers come from the application's registered propagator
 * (`propagation.inject(context.active(), headers)`). When that wrote no `traceparent` (no
 * propagator is registered, so the API's default no-op ran, or it speaks another format) and
 * the active context has a valid span context, the SDK adds the W3C headers itself: with
 * `W3CTraceContextPropagator` from `@opentelemetry/core` when the application has it, else by
 * formatting `traceparent` (`00-<trace id>-<span id>-<flags>`) and `tracestate` directly.
 */

import { createRequire } from "node:module";
import { join, resolve } from "node:path";

/** The parts of a span context used here (as in `@opentelemetry/api`). */
interface SpanContextLike {
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceState?: { serialize(): string };
}

interface Setter {
  set(carrier: Record<string, string>, key: string, value: string): void;
}

interface PropagatorLike {
  inject(context: unknown, carrier: Record<string, string>, setter: Setter): void;
}

/** The parts of `@opentelemetry/api` used here. */
interface OtelApi {
  context: { active(): unknown };
  propagation: { inject(context: unknown, carrier: Record<string, string>, setter?: Setter): void };
  trace: {
    getSpanContext(context: unknown): SpanContextLike | undefined;
    isSpanContextValid?(spanContext: SpanContextLike): boolean;
  };
}

const setter: Setter = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

/** What has been loaded: undefined = not tried yet, null = not available. */
let api: OtelApi | null | undefined;
let w3c: PropagatorLike | null | undefined;

/** Paths to resolve the application's packages from, in order. */
function resolutionBases(): string[] {
  const bases: string[] = [];
  const main = process.argv[1];
  if (typeof main === "string" && main !== "" && main !== "-") bases.push(resolve(main));
  try {
    bases.push(join(process.cwd(), "__faramesh__.js"));
  } catch {
    // the working directory is gone
  }
  // CommonJS build only: where this SDK is installed (in the ES module build it is undefined).
  if (typeof __filename === "string") bases.push(__filename);
  return bases;
}

/** `require(name)` from the first base that has it, or undefined. Never throws. */
function load(name: string): unknown {
  for (const base of resolutionBases()) {
    try {
      return createRequire(base)(name);
    } catch {
      // not installed there (or failing to load): try the next place
    }
  }
  return undefined;
}

function loadApi(): OtelApi | null {
  const candidate = load("@opentelemetry/api") as Partial<OtelApi> | undefined;
  if (
    typeof candidate?.context?.active === "function" &&
    typeof candidate.propagation?.inject === "function" &&
    typeof candidate.trace?.getSpanContext === "function"
  ) {
    return candidate as OtelApi;
  }
  return null;
}

function loadW3cPropagator(): PropagatorLike | null {
  try {
    const core = load("@opentelemetry/core") as { W3CTraceContextPropagator?: new () => PropagatorLike } | undefined;
    return typeof core?.W3CTraceContextPropagator === "function" ? new core.W3CTraceContextPropagator() : null;
  } catch {
    return null;
  }
}

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;

function isValid(otel: OtelApi, spanContext: SpanContextLike | undefined): spanContext is SpanContextLike {
  if (!spanContext) return false;
  if (typeof otel.trace.isSpanContextValid === "function") return otel.trace.isSpanContextValid(spanContext);
  return (
    TRACE_ID.test(spanContext.traceId) &&
    !/^0+$/.test(spanContext.traceId) &&
    SPAN_ID.test(spanContext.spanId) &&
    !/^0+$/.test(spanContext.spanId)
  );
}

/** `traceparent` and `tracestate` of a valid span context, formatted per W3C Trace Context. */
function formatW3c(spanContext: SpanContextLike, carrier: Record<string, string>): void {
  const flags = (Number(spanContext.traceFlags) & 0xff).toString(16).padStart(2, "0");
  carrier.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
  const state = spanContext.traceState?.serialize();
  if (typeof state === "string" && state !== "") carrier.tracestate = state;
}

/**
 * The trace context headers for a request made now: `traceparent` (and `tracestate`, and
 * whatever else the application's propagator writes) when there is a current span, else
 * nothing. Never throws.
 */
export function traceHeaders(): Record<string, string> {
  if (api === undefined) api = loadApi();
  if (api === null) return {};
  const carrier: Record<string, string> = {};
  try {
    const active = api.context.active();
    api.propagation.inject(active, carrier, setter);
    if (carrier.traceparent === undefined) {
      const spanContext = api.trace.getSpanContext(active);
      if (isValid(api, spanContext)) {
        if (w3c === undefined) w3c = loadW3cPropagator();
        if (w3c) w3c.inject(active, carrier, setter);
        else formatW3c(spanContext, carrier);
      }
    }
  } catch {
    return {};
  }
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(carrier)) {
    if (typeof value === "string") headers[key.toLowerCase()] = value;
  }
  return headers;
}
