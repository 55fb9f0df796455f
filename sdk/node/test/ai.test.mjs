// The Vercel AI SDK integration (@faramesh/sdk/ai): tools made with the real `ai` package's
// tool(), run by generateText with the AI SDK's own scripted mock model, against a real server
// (policies/default.yaml: http get allowed, shell needs approval, anything else denied).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generateText, stepCountIs, tool } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { z } from "zod";
import helpers from "./helpers/server.cjs";
import {
  ExecutionGovernorClient,
  FarameshConnectionError,
  FarameshPolicyError,
  approveAction,
  configure,
  denyAction,
  getEvents,
  listActions,
} from "@faramesh/sdk";
import { DENIAL_PREFIX, GovernedToolDeniedError, governTool, governTools } from "@faramesh/sdk/ai";

const { FarameshServer, deferred, freePort, within } = helpers;

let server;

before(async () => {
  server = await FarameshServer.start();
  configure({ baseUrl: server.url, agentId: "agent-ai-default", retryBackoffFactor: 0.001 });
});

after(async () => {
  await server?.dispose();
});

// ---- the scripted model ----------------------------------------------------------------------

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 5, text: 5, reasoning: 0 },
};

/** A model turn that calls one tool. */
function callsTool(toolCallId, toolName, input) {
  return {
    content: [{ type: "tool-call", toolCallId, toolName, input: JSON.stringify(input) }],
    finishReason: { unified: "tool-calls", raw: "tool_calls" },
    usage,
    warnings: [],
  };
}

/** A model turn that answers with text and stops. */
function says(text) {
  return { content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
}

/** The AI SDK's mock model, answering with the given turns in order. */
function scriptedModel(...turns) {
  return new MockLanguageModelV3({ doGenerate: turns });
}

/** What the model was given as the outputs of its tool calls, by tool call id, before turn `n` (from 0). */
function toolOutputsSeen(model, n) {
  const seen = {};
  for (const message of model.doGenerateCalls[n].prompt) {
    if (message.role !== "tool") continue;
    for (const part of message.content) if (part.type === "tool-result") seen[part.toolCallId] = part.output;
  }
  return seen;
}

/** The content parts of every step of a generateText result, tool calls left out. */
function toolOutcomes(result) {
  return result.steps.flatMap((s) => s.content).filter((p) => p.type === "tool-result" || p.type === "tool-error");
}

/** The actions an agent submitted, oldest first. */
async function actionsOf(agentId) {
  return (await listActions({ agentId, limit: 100 })).reverse();
}

// ---- the tools -------------------------------------------------------------------------------

function makeTools(log) {
  return {
    http: tool({
      description: "HTTP GET a URL",
      inputSchema: z.object({ url: z.string() }),
      execute: async ({ url }) => {
        log.push(`http ${url}`);
        return { status: 200, url };
      },
    }),
    stripe: tool({
      description: "Refund a payment",
      inputSchema: z.object({ amount: z.number() }),
      execute: async ({ amount }) => {
        log.push(`refund ${amount}`);
        return { refunded: amount };
      },
    }),
    shell: tool({
      description: "Run a shell command",
      inputSchema: z.object({ cmd: z.string() }),
      execute: async ({ cmd }) => {
        log.push(`shell ${cmd}`);
        return `ran ${cmd}`;
      },
    }),
  };
}

describe("governTools in generateText", () => {
  test("allowed runs and is reported; denied never runs and the model sees the refusal; approval runs only once approved", async () => {
    const log = [];
    const pending = deferred();
    const tools = governTools(makeTools(log), {
      agentId: "agent-ai-main",
      pollIntervalMs: 10,
      context: { session: "s-1" },
      onPending: (action) => pending.resolve(action),
      overrides: { http: { operation: "get" }, stripe: { operation: "refund" } },
    });
    const model = scriptedModel(
      callsTool("call-1", "http", { url: "https://example.com/status" }),
      callsTool("call-2", "stripe", { amount: 5000 }),
      callsTool("call-3", "shell", { cmd: "ls -la" }),
      says("Done."),
    );

    const running = generateText({ model, tools, prompt: "check, refund, list", stopWhen: stepCountIs(10) });

    // The third call waits for a human: nothing of it has run yet.
    const waiting = await within(pending.promise, 20_000, "the shell call to wait for approval");
    assert.equal(waiting.status, "pending_approval");
    assert.equal(waiting.tool, "shell");
    assert.equal(waiting.operation, "run", "the default operation");
    assert.deepEqual(waiting.params, { cmd: "ls -la" }, "the tool input is the params");
    assert.deepEqual(log, ["http https://example.com/status"], "the allowed call ran, the denied one did not");
    await approveAction(waiting.id, { reason: "reviewed" });

    const result = await within(running, 20_000, "generateText");
    assert.equal(result.text, "Done.");
    assert.deepEqual(log, ["http https://example.com/status", "shell ls -la"]);

    // What the AI SDK made of each call.
    const [http, stripe, shell] = toolOutcomes(result);
    assert.equal(http.type, "tool-result");
    assert.deepEqual(http.output, { status: 200, url: "https://example.com/status" });
    assert.equal(stripe.type, "tool-error");
    assert.ok(stripe.error instanceof GovernedToolDeniedError);
    assert.ok(stripe.error instanceof FarameshPolicyError);
    assert.equal(stripe.error.message, "Faramesh denied this call: Default deny rule");
    assert.equal(stripe.error.reason, "Default deny rule");
    assert.equal(stripe.error.toolName, "stripe");
    assert.equal(stripe.error.toolCallId, "call-2");
    assert.equal(stripe.error.action.status, "denied");
    assert.equal(shell.type, "tool-result");
    assert.equal(shell.output, "ran ls -la");

    // What the model was told: the outputs, and the refusal as the denied call's error text.
    const seen = toolOutputsSeen(model, 3);
    assert.deepEqual(seen["call-1"], { type: "json", value: { status: 200, url: "https://example.com/status" } });
    assert.deepEqual(seen["call-2"], { type: "error-text", value: "Faramesh denied this call: Default deny rule" });
    assert.deepEqual(seen["call-3"], { type: "text", value: "ran ls -la" });

    // What the server recorded.
    const actions = await actionsOf("agent-ai-main");
    assert.deepEqual(
      actions.map((a) => [a.tool, a.operation, a.status]),
      [
        ["http", "get", "succeeded"],
        ["stripe", "refund", "denied"],
        ["shell", "run", "succeeded"],
      ],
    );
    assert.deepEqual(actions[0].params, { url: "https://example.com/status" });
    assert.deepEqual(actions[1].params, { amount: 5000 });
    assert.deepEqual(actions[2].params, { cmd: "ls -la" });
    assert.deepEqual(actions[0].context, { session: "s-1", integration: "vercel-ai-sdk", tool_call_id: "call-1" });
    assert.equal(actions[1].context.tool_call_id, "call-2");
    assert.equal(actions[2].reason, "reviewed");

    const httpEvents = await getEvents(actions[0].id);
    assert.deepEqual(httpEvents.map((e) => e.event_type), ["created", "decision_made", "succeeded"]);
    assert.deepEqual(httpEvents.at(-1).meta.output, { status: 200, url: "https://example.com/status" });
    const stripeEvents = await getEvents(actions[1].id);
    assert.ok(!stripeEvents.some((e) => ["succeeded", "failed"].includes(e.event_type)), "nothing reported for a denied call");
    const shellEvents = await getEvents(actions[2].id);
    assert.deepEqual(shellEvents.map((e) => e.event_type), ["created", "decision_made", "approved", "succeeded"]);
    assert.equal(shellEvents.at(-1).meta.output, "ran ls -la");
  });

  test("denied by a human while waiting: the tool never runs and the model gets the human's reason", async () => {
    const log = [];
    const pending = deferred();
    const shell = governTool(makeTools(log).shell, {
      toolName: "shell",
      agentId: "agent-ai-human-deny",
      pollIntervalMs: 10,
      onPending: (action) => pending.resolve(action),
    });
    const model = scriptedModel(callsTool("call-1", "shell", { cmd: "rm -rf /tmp/x" }), says("Understood."));
    const running = generateText({ model, tools: { shell }, prompt: "clean up", stopWhen: stepCountIs(5) });
    const waiting = await within(pending.promise, 20_000, "the call to wait for approval");
    await denyAction(waiting.id, { reason: "not on prod" });
    const result = await within(running, 20_000, "generateText");

    assert.deepEqual(log, []);
    const [outcome] = toolOutcomes(result);
    assert.equal(outcome.type, "tool-error");
    assert.ok(outcome.error instanceof GovernedToolDeniedError);
    assert.equal(outcome.error.reason, "not on prod");
    assert.deepEqual(toolOutputsSeen(model, 1)["call-1"], {
      type: "error-text",
      value: "Faramesh denied this call: not on prod",
    });
    const [action] = await actionsOf("agent-ai-human-deny");
    assert.equal(action.status, "denied");
  });

  test("no approval in time: refused like a denial, and the action stays pending", async () => {
    const log = [];
    const tools = governTools({ shell: makeTools(log).shell }, {
      agentId: "agent-ai-timeout",
      pollIntervalMs: 10,
      approvalTimeoutMs: 50,
    });
    const model = scriptedModel(callsTool("call-1", "shell", { cmd: "uptime" }), says("Nobody answered."));
    const result = await generateText({ model, tools, prompt: "uptime", stopWhen: stepCountIs(5) });

    assert.deepEqual(log, []);
    const [action] = await actionsOf("agent-ai-timeout");
    assert.equal(action.status, "pending_approval");
    const text = `${DENIAL_PREFIX}: no one approved it within 0.05 seconds (action ${action.id} is still pending approval)`;
    assert.equal(toolOutcomes(result)[0].error.message, text);
    assert.deepEqual(toolOutputsSeen(model, 1)["call-1"], { type: "error-text", value: text });
  });

  test("onDenied: the refusal becomes the tool's ordinary output", async () => {
    const log = [];
    const stripe = governTool(makeTools(log).stripe, {
      toolName: "stripe",
      operation: "refund",
      agentId: "agent-ai-ondenied",
      onDenied: (error) => ({ refused: error.message }),
    });
    const model = scriptedModel(callsTool("call-1", "stripe", { amount: 20 }), says("Could not refund."));
    const result = await generateText({ model, tools: { stripe }, prompt: "refund", stopWhen: stepCountIs(5) });

    assert.deepEqual(log, []);
    const [outcome] = toolOutcomes(result);
    assert.equal(outcome.type, "tool-result");
    assert.deepEqual(outcome.output, { refused: "Faramesh denied this call: Default deny rule" });
    assert.deepEqual(toolOutputsSeen(model, 1)["call-1"], {
      type: "json",
      value: { refused: "Faramesh denied this call: Default deny rule" },
    });
  });

  test("a tool that throws is reported as failed, and the model sees the tool's own error", async () => {
    const http = governTool(
      tool({
        description: "HTTP GET",
        inputSchema: z.object({ url: z.string() }),
        execute: async () => {
          throw new RangeError("upstream returned 502");
        },
      }),
      { toolName: "http", operation: "get", agentId: "agent-ai-fail" },
    );
    const model = scriptedModel(callsTool("call-1", "http", { url: "https://example.com" }), says("It failed."));
    const result = await generateText({ model, tools: { http }, prompt: "get", stopWhen: stepCountIs(5) });

    const [outcome] = toolOutcomes(result);
    assert.equal(outcome.type, "tool-error");
    assert.ok(outcome.error instanceof RangeError, "the tool's own error, not a refusal");
    // AI SDK 6 gives the model the error's message (AI SDK 7 would give "RangeError: ...").
    assert.deepEqual(toolOutputsSeen(model, 1)["call-1"], { type: "error-text", value: "upstream returned 502" });
    const [action] = await actionsOf("agent-ai-fail");
    assert.equal(action.status, "failed");
    const last = (await getEvents(action.id)).at(-1);
    assert.equal(last.event_type, "failed");
    assert.equal(last.meta.error, "upstream returned 502");
  });

  test("a streaming tool (async *execute) runs only when allowed, streams, and its last value is reported", async () => {
    const log = [];
    const progress = governTool(
      tool({
        description: "HTTP GET with progress",
        inputSchema: z.object({ url: z.string() }),
        async *execute({ url }) {
          log.push("started");
          yield { state: "loading", url };
          yield { state: "done", url, status: 200 };
        },
      }),
      { toolName: "http", operation: "get", agentId: "agent-ai-stream" },
    );
    const model = scriptedModel(callsTool("call-1", "http", { url: "https://example.com" }), says("Loaded."));
    const result = await generateText({ model, tools: { http: progress }, prompt: "get", stopWhen: stepCountIs(5) });

    assert.deepEqual(log, ["started"]);
    const [outcome] = toolOutcomes(result);
    assert.deepEqual(outcome.output, { state: "done", url: "https://example.com", status: 200 });
    const [action] = await actionsOf("agent-ai-stream");
    assert.equal(action.status, "succeeded");
    assert.deepEqual((await getEvents(action.id)).at(-1).meta.output, { state: "done", url: "https://example.com", status: 200 });

    // Denied, a streaming tool never starts.
    const refund = governTool(
      tool({
        description: "Refund",
        inputSchema: z.object({ amount: z.number() }),
        async *execute() {
          log.push("refund started");
          yield "refunding";
        },
      }),
      { toolName: "stripe", operation: "refund", agentId: "agent-ai-stream" },
    );
    const direct = refund.execute({ amount: 1 }, { toolCallId: "call-x", messages: [] });
    const chunks = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of direct) chunks.push(chunk);
      })(),
      (e) => e instanceof GovernedToolDeniedError && e.message === "Faramesh denied this call: Default deny rule",
    );
    assert.deepEqual(chunks, []);
    assert.deepEqual(log, ["started"]);
  });

  test("aborting the generation stops waiting for approval; the tool never runs", async () => {
    const log = [];
    const controller = new AbortController();
    const tools = governTools({ shell: makeTools(log).shell }, {
      agentId: "agent-ai-abort",
      pollIntervalMs: 10,
      onPending: () => controller.abort(new Error("user cancelled")),
    });
    const model = scriptedModel(callsTool("call-1", "shell", { cmd: "make deploy" }), says("never"));
    await assert.rejects(
      within(
        generateText({ model, tools, prompt: "deploy", stopWhen: stepCountIs(5), abortSignal: controller.signal }),
        20_000,
        "generateText",
      ),
    );
    assert.deepEqual(log, []);
    const [action] = await actionsOf("agent-ai-abort");
    assert.equal(action.status, "pending_approval");
  });
});

describe("fail mode", () => {
  test("fail-closed (default): with the server unreachable the tool does not run and the error reaches the model", async () => {
    const log = [];
    const client = new ExecutionGovernorClient({
      baseUrl: `http://127.0.0.1:${await freePort()}`,
      maxRetries: 0,
      agentId: "agent-ai-down",
    });
    const tools = governTools({ http: makeTools(log).http }, { client, overrides: { http: { operation: "get" } } });
    const model = scriptedModel(callsTool("call-1", "http", { url: "https://example.com" }), says("Server down."));
    const result = await generateText({ model, tools, prompt: "get", stopWhen: stepCountIs(5) });

    assert.deepEqual(log, []);
    const [outcome] = toolOutcomes(result);
    assert.equal(outcome.type, "tool-error");
    assert.ok(outcome.error instanceof FarameshConnectionError);
    assert.match(toolOutputsSeen(model, 1)["call-1"].value, /^Cannot reach the Faramesh server at /);
  });

  test("fail-open: with the server unreachable the tool runs and nothing is recorded", async () => {
    const log = [];
    const errors = [];
    const client = new ExecutionGovernorClient({
      baseUrl: `http://127.0.0.1:${await freePort()}`,
      maxRetries: 0,
      failOpen: true,
      onError: (e) => errors.push(e),
    });
    const tools = governTools({ shell: makeTools(log).shell }, { client });
    const model = scriptedModel(callsTool("call-1", "shell", { cmd: "ls" }), says("Listed."));
    const result = await generateText({ model, tools, prompt: "ls", stopWhen: stepCountIs(5) });

    assert.deepEqual(log, ["shell ls"]);
    assert.equal(toolOutcomes(result)[0].output, "ran ls");
    assert.ok(errors.some((e) => e instanceof FarameshConnectionError), "the failure still goes to onError");
  });
});

describe("wrapping", () => {
  test("a governed tool keeps the original's schema and description and leaves the original alone", () => {
    const original = makeTools([]).http;
    const governed = governTool(original, { toolName: "http" });
    assert.notEqual(governed, original);
    assert.notEqual(governed.execute, original.execute);
    assert.equal(governed.inputSchema, original.inputSchema);
    assert.equal(governed.description, "HTTP GET a URL");
    const set = { a: original, b: original };
    const governedSet = governTools(set);
    assert.deepEqual(Object.keys(governedSet), ["a", "b"]);
    assert.equal(set.a, original, "the tool set passed in is not changed");
  });

  test("params and context can be derived from the input; a non-object input is { input }", async () => {
    const echo = tool({ description: "echo", inputSchema: z.string(), execute: async (s) => s.toUpperCase() });
    const plain = governTool(echo, { toolName: "http", operation: "get", agentId: "agent-ai-shapes" });
    assert.equal(await plain.execute("hi", { toolCallId: "c-1", messages: [] }), "HI");
    const mapped = governTool(echo, {
      toolName: "http",
      operation: "get",
      agentId: "agent-ai-shapes",
      params: (s) => ({ url: `https://example.com/${s}` }),
      context: (s, options) => ({ length: s.length, call: options.toolCallId, integration: "overridden?" }),
      reportOutput: (out) => ({ length: out.length }),
    });
    assert.equal(await mapped.execute("abc", { toolCallId: "c-2", messages: [] }), "ABC");

    const [first, second] = await actionsOf("agent-ai-shapes");
    assert.deepEqual(first.params, { input: "hi" });
    assert.deepEqual(first.context, { integration: "vercel-ai-sdk", tool_call_id: "c-1" });
    assert.deepEqual(second.params, { url: "https://example.com/abc" });
    assert.deepEqual(second.context, { length: 3, call: "c-2", integration: "vercel-ai-sdk", tool_call_id: "c-2" });
    assert.deepEqual((await getEvents(second.id)).at(-1).meta.output, { length: 3 });
  });

  test("configure() after wrapping still applies: the shared client is looked up at each call", async () => {
    const governed = governTool(makeTools([]).http, { toolName: "http", operation: "get" });
    configure({ agentId: "agent-ai-late" });
    try {
      await governed.execute({ url: "https://example.com" }, { toolCallId: "c-1", messages: [] });
    } finally {
      configure({ agentId: "agent-ai-default" });
    }
    assert.equal((await actionsOf("agent-ai-late")).length, 1);
  });

  test("bad arguments are rejected at wrapping time", () => {
    const http = makeTools([]).http;
    assert.throws(() => governTool(http, {}), /toolName/);
    assert.throws(() => governTool(null, { toolName: "x" }), TypeError);
    const clientSide = tool({ description: "ask the user", inputSchema: z.object({ q: z.string() }) });
    assert.throws(() => governTool(clientSide, { toolName: "ask" }), /ask has no execute function/);
    assert.throws(() => governTools({ http, ask: clientSide }), /ask has no execute function/);
  });
});
