// OpenTelemetry context propagation: inside an active span every request the SDK makes carries
// the span's W3C trace context (traceparent, tracestate), outside of one none. The headers are
// seen by a recording HTTP proxy in front of a real server (the server does not show them).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TraceFlags, context, createTraceState, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import helpers from "./helpers/server.cjs";
import { ExecutionGovernorClient } from "@faramesh/sdk";

const { FarameshServer, deferred, within } = helpers;
const SDK_ROOT = fileURLToPath(new URL("..", import.meta.url));

let server;
let proxy;

/**
 * An HTTP proxy in front of `target` that records each request's method, path and headers and
 * passes the request and the answer (streams too) through unchanged.
 */
async function recordingProxy(target) {
  const { hostname, port } = new URL(target);
  const requests = [];
  const sockets = new Set();
  const agent = new http.Agent({ keepAlive: false });
  const proxyServer = http.createServer((req, res) => {
    requests.push({ method: req.method, path: req.url, headers: { ...req.headers } });
    const upstream = http.request({ hostname, port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      if (!res.writableEnded) res.end(String(error));
    });
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  proxyServer.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve) => proxyServer.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${proxyServer.address().port}`,
    requests,
    /** The requests that arrived while `fn` ran. */
    async during(fn) {
      const start = requests.length;
      await fn();
      return requests.slice(start);
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        proxyServer.close(() => resolve());
      }),
  };
}

before(async () => {
  server = await FarameshServer.start();
  proxy = await recordingProxy(server.url);
  // What an instrumented agent sets up: a context manager that follows async calls, a tracer
  // provider, and the W3C propagator.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});

after(async () => {
  trace.disable();
  propagation.disable();
  context.disable();
  await proxy?.close();
  await server?.dispose();
});

const tracer = () => trace.getTracer("faramesh-sdk-tests");

/** The traceparent header of a span: 00-<trace id>-<span id>-<flags>. */
function traceparentOf(span) {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, "0")}`;
}

/** Runs `fn(span)` in a new active span, ending the span afterwards. */
function inSpan(name, fn) {
  return tracer().startActiveSpan(name, async (span) => {
    try {
      return await fn(span);
    } finally {
      span.end();
    }
  });
}

/** Opens the live stream, waits until the server answered it, and closes it. */
async function openAndCloseStream(client, agentId) {
  const opened = deferred();
  const stream = client.eventStream({ agentId, onOpen: () => opened.resolve() });
  const iterator = stream[Symbol.asyncIterator]();
  const next = iterator.next();
  await within(opened.promise, 10_000, "the event stream to open");
  stream.close();
  await within(next, 10_000, "the stream's first step"); // an event the server had buffered, or the end
  await iterator.return();
}

const submitGet = (client) => client.submitAction({ tool: "http", operation: "get", params: { url: "https://example.com" } });

describe("with an active span", () => {
  test("every request carries the span's traceparent: submit, start, report, get, list, govern, the live stream", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: proxy.url, agentId: "agent-trace-all" });
    let expected;
    const seen = await proxy.during(() =>
      inSpan("agent step", async (span) => {
        expected = traceparentOf(span);
        // An await before the first call: the span is found through the async context.
        await new Promise((resolve) => setTimeout(resolve, 1));
        const action = await submitGet(client);
        assert.equal(action.status, "allowed");
        await client.startAction(action.id);
        await client.reportResult(action.id, { success: true, output: "ok" });
        await client.getAction(action.id);
        await client.listActions({ agentId: "agent-trace-all" });
        const governed = client.govern(async () => "ran", { tool: "http", operation: "get" });
        assert.equal(await governed(), "ran");
        await openAndCloseStream(client, "agent-trace-all");
      }),
    );

    assert.match(expected, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const kinds = seen.map((r) => `${r.method} ${r.path.split("?")[0].replace(/[0-9a-f-]{36}/, ":id")}`);
    assert.deepEqual(kinds, [
      "POST /v1/actions",
      "POST /v1/actions/:id/start",
      "POST /v1/actions/:id/result",
      "GET /v1/actions/:id",
      "GET /v1/actions",
      "POST /v1/actions", // govern: submit, then report
      "POST /v1/actions/:id/result",
      "GET /v1/events",
    ]);
    for (const request of seen) {
      assert.equal(request.headers.traceparent, expected, `${request.method} ${request.path}`);
      assert.equal(request.headers.tracestate, undefined, "the span has no trace state");
    }

    // The server behind the proxy did the work.
    const actions = await client.listActions({ agentId: "agent-trace-all" });
    assert.deepEqual(actions.map((a) => a.status), ["succeeded", "succeeded"]);
  });

  test("tracestate is sent when the span has one; the trace continues a remote parent", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: proxy.url, agentId: "agent-trace-state" });
    const remote = trace.setSpanContext(context.active(), {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: createTraceState("faramesh=t61rcWkgMzE,other=x"),
    });
    let expected;
    const seen = await proxy.during(() =>
      context.with(remote, () =>
        inSpan("tool call", async (span) => {
          expected = traceparentOf(span);
          await submitGet(client);
        }),
      ),
    );
    assert.match(expected, /^00-4bf92f3577b34da6a3ce929d0e0e4736-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$/);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].headers.traceparent, expected);
    assert.equal(seen[0].headers.tracestate, "faramesh=t61rcWkgMzE,other=x");
  });

  test("concurrent spans: each request carries the context of the span it was made in", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: proxy.url });
    const expected = {};
    const one = (agentId) =>
      inSpan(`step of ${agentId}`, async (span) => {
        expected[agentId] = traceparentOf(span);
        for (let i = 0; i < 3; i++) {
          await client.listActions({ agentId });
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      });
    const seen = await proxy.during(() => Promise.all([one("agent-trace-a"), one("agent-trace-b")]));
    assert.notEqual(expected["agent-trace-a"], expected["agent-trace-b"]);
    assert.equal(seen.length, 6);
    for (const request of seen) {
      const agentId = new URL(request.path, "http://x").searchParams.get("agent_id");
      assert.equal(request.headers.traceparent, expected[agentId], request.path);
    }
  });

  test("no propagator registered: the SDK sends the W3C headers itself (W3CTraceContextPropagator of @opentelemetry/core)", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: proxy.url, agentId: "agent-trace-nopropagator" });
    propagation.disable(); // the API's default propagator does nothing
    try {
      let expected;
      const seen = await proxy.during(() =>
        inSpan("step", async (span) => {
          expected = traceparentOf(span);
          await submitGet(client);
        }),
      );
      assert.equal(seen.length, 1);
      assert.equal(seen[0].headers.traceparent, expected);
    } finally {
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    }
  });

  test("a propagator of another format: its headers are sent, and the W3C traceparent too", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: proxy.url, agentId: "agent-trace-other" });
    propagation.disable();
    propagation.setGlobalPropagator({
      inject: (ctx, carrier, setter) => setter.set(carrier, "x-other-trace-id", trace.getSpanContext(ctx)?.traceId ?? "none"),
      extract: (ctx) => ctx,
      fields: () => ["x-other-trace-id"],
    });
    try {
      let span;
      const seen = await proxy.during(() =>
        inSpan("step", async (s) => {
          span = s;
          await submitGet(client);
        }),
      );
      assert.equal(seen[0].headers["x-other-trace-id"], span.spanContext().traceId);
      assert.equal(seen[0].headers.traceparent, traceparentOf(span));
    } finally {
      propagation.disable();
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    }
  });

  test("a traceparent set in the client's headers option takes precedence", async () => {
    const fixed = "00-11111111111111111111111111111111-2222222222222222-00";
    const client = new ExecutionGovernorClient({ baseUrl: proxy.url, agentId: "agent-trace-fixed", headers: { TraceParent: fixed } });
    const seen = await proxy.during(() => inSpan("step", () => submitGet(client)));
    assert.equal(seen[0].headers.traceparent, fixed);
  });
});

describe("without an active span", () => {
  test("no trace header is sent", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: proxy.url, agentId: "agent-trace-none" });
    const seen = await proxy.during(async () => {
      const action = await submitGet(client);
      await client.getAction(action.id);
      await client.listActions({ agentId: "agent-trace-none" });
      await openAndCloseStream(client, "agent-trace-none");
      // A span that was active once (and ended) is not current afterwards.
      await inSpan("earlier step", async () => {});
      await client.getAction(action.id);
    });
    assert.equal(seen.length, 5);
    for (const request of seen) {
      assert.equal(request.headers.traceparent, undefined, `${request.method} ${request.path}`);
      assert.equal(request.headers.tracestate, undefined, `${request.method} ${request.path}`);
    }
  });
});

// ---- applications of their own: the SDK copied into a folder with chosen packages -----------

describe("an application without @opentelemetry/core, or without @opentelemetry/api", () => {
  const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
  const SPAN_ID = "b7ad6b7169203331";
  let root;

  // The same program as an ES module (the SDK's ESM build) and as CommonJS (its CJS build):
  // one submission inside the span context when @opentelemetry/api is installed, one outside.
  const BODY = `
async function main(sdk, load) {
  const [url, agentId] = process.argv.slice(2);
  const client = new sdk.ExecutionGovernorClient({ baseUrl: url, agentId, maxRetries: 0 });
  const submit = () => client.submitAction({ tool: "http", operation: "get", params: { url: "https://example.com" } });
  let otel;
  try {
    otel = load("@opentelemetry/api");
  } catch {
    otel = undefined;
  }
  let action;
  if (otel) {
    const { AsyncLocalStorageContextManager } = load("@opentelemetry/context-async-hooks");
    otel.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const spanContext = {
      traceId: "${TRACE_ID}",
      spanId: "${SPAN_ID}",
      traceFlags: 1,
      traceState: otel.createTraceState("vendor=value"),
    };
    action = await otel.context.with(otel.trace.setSpanContext(otel.context.active(), spanContext), async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return submit();
    });
  } else {
    action = await submit();
  }
  const outside = await submit();
  console.log(JSON.stringify({ otel: Boolean(otel), statuses: [action.status, outside.status] }));
}
`;
  const PROGRAMS = {
    "main.mjs": `import { createRequire } from "node:module";\nimport * as sdk from "@faramesh/sdk";\n${BODY}\nawait main(sdk, createRequire(import.meta.url));\n`,
    "main.cjs": `"use strict";\n${BODY}\nmain(require("@faramesh/sdk"), require).catch((error) => {\n  console.error(error);\n  process.exit(1);\n});\n`,
  };

  /** A folder with the built SDK (copied, not linked) and links to the given installed packages. */
  function application(name, packages) {
    const dir = path.join(root, name);
    const sdk = path.join(dir, "node_modules", "@faramesh", "sdk");
    fs.mkdirSync(sdk, { recursive: true });
    fs.copyFileSync(path.join(SDK_ROOT, "package.json"), path.join(sdk, "package.json"));
    fs.cpSync(path.join(SDK_ROOT, "dist"), path.join(sdk, "dist"), { recursive: true });
    for (const pkg of packages) {
      const link = path.join(dir, "node_modules", pkg);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(path.join(SDK_ROOT, "node_modules", pkg), link, "dir");
    }
    for (const [file, text] of Object.entries(PROGRAMS)) fs.writeFileSync(path.join(dir, file), text);
    return dir;
  }

  /** Runs one program of an application; returns what it printed and the requests it made. */
  async function run(dir, program, agentId) {
    const env = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith("FARAMESH_") && !k.startsWith("FARA_") && k !== "NODE_PATH" && k !== "NODE_OPTIONS") env[k] = v;
    }
    env.HOME = dir; // no packages from ~/.node_modules
    let printed;
    const seen = await proxy.during(async () => {
      const { stdout } = await promisify(execFile)(process.execPath, [path.join(dir, program), proxy.url, agentId], {
        cwd: dir,
        env,
        timeout: 30_000,
      });
      printed = JSON.parse(stdout.trim().split("\n").at(-1));
    });
    return { printed, seen };
  }

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "faramesh-node-tracing-"));
  });

  after(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  test("@opentelemetry/api without @opentelemetry/core: the SDK formats traceparent and tracestate itself (ESM and CJS builds)", async () => {
    const dir = application("api-only", ["@opentelemetry/api", "@opentelemetry/context-async-hooks"]);
    for (const program of Object.keys(PROGRAMS)) {
      const { printed, seen } = await run(dir, program, `agent-trace-api-only-${program}`);
      assert.deepEqual(printed, { otel: true, statuses: ["allowed", "allowed"] }, program);
      assert.equal(seen.length, 2, program);
      assert.equal(seen[0].headers.traceparent, `00-${TRACE_ID}-${SPAN_ID}-01`, program);
      assert.equal(seen[0].headers.tracestate, "vendor=value", program);
      assert.equal(seen[1].headers.traceparent, undefined, `${program}: outside the span`);
      assert.equal(seen[1].headers.tracestate, undefined, `${program}: outside the span`);
    }
  });

  test("no @opentelemetry/api installed: the SDK works and sends no trace header (ESM and CJS builds)", async () => {
    const dir = application("no-otel", []);
    for (const program of Object.keys(PROGRAMS)) {
      const { printed, seen } = await run(dir, program, `agent-trace-no-otel-${program}`);
      assert.deepEqual(printed, { otel: false, statuses: ["allowed", "allowed"] }, program);
      assert.equal(seen.length, 2, program);
      for (const request of seen) {
        assert.equal(request.headers.traceparent, undefined, program);
        assert.equal(request.headers.tracestate, undefined, program);
        assert.match(request.headers["user-agent"], /^faramesh-node\//, program);
      }
    }
  });
});
