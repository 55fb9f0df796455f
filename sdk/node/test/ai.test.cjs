"use strict";
// The Vercel AI SDK integration from CommonJS: require("@faramesh/sdk/ai") (the CJS build)
// governs tools of the real `ai` package (an ES module, loaded with import()).
const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");
const { FarameshServer } = require("./helpers/server.cjs");
const { ExecutionGovernorClient, FarameshPolicyError } = require("@faramesh/sdk");
const { GovernedToolDeniedError, governTools } = require("@faramesh/sdk/ai");

let server;

before(async () => {
  server = await FarameshServer.start();
});

after(async () => {
  await server?.dispose();
});

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};
const callsTool = (toolCallId, toolName, input) => ({
  content: [{ type: "tool-call", toolCallId, toolName, input: JSON.stringify(input) }],
  finishReason: { unified: "tool-calls", raw: "tool_calls" },
  usage,
  warnings: [],
});

test("require('@faramesh/sdk/ai') governs AI SDK tools: allowed runs, denied does not", async () => {
  const { generateText, stepCountIs, jsonSchema, tool } = await import("ai");
  const { MockLanguageModelV3 } = await import("ai/test");
  const ran = [];
  const client = new ExecutionGovernorClient({ baseUrl: server.url, agentId: "agent-ai-cjs" });
  const tools = governTools(
    {
      http: tool({
        description: "HTTP GET",
        inputSchema: jsonSchema({ type: "object", properties: { url: { type: "string" } }, required: ["url"] }),
        execute: async ({ url }) => {
          ran.push(url);
          return { status: 200 };
        },
      }),
      stripe: tool({
        description: "Refund",
        inputSchema: jsonSchema({ type: "object", properties: { amount: { type: "number" } }, required: ["amount"] }),
        execute: async () => ran.push("refund"),
      }),
    },
    { client, overrides: { http: { operation: "get" }, stripe: { operation: "refund" } } },
  );
  const model = new MockLanguageModelV3({
    doGenerate: [
      callsTool("call-1", "http", { url: "https://example.com" }),
      callsTool("call-2", "stripe", { amount: 10 }),
      { content: [{ type: "text", text: "ok" }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] },
    ],
  });
  const result = await generateText({ model, tools, prompt: "go", stopWhen: stepCountIs(5) });

  assert.deepEqual(ran, ["https://example.com"]);
  const outcomes = result.steps.flatMap((s) => s.content).filter((p) => p.type === "tool-result" || p.type === "tool-error");
  assert.deepEqual(outcomes[0].output, { status: 200 });
  assert.ok(outcomes[1].error instanceof GovernedToolDeniedError);
  assert.ok(outcomes[1].error instanceof FarameshPolicyError, "the CommonJS build's own error classes");
  assert.equal(outcomes[1].error.message, "Faramesh denied this call: Default deny rule");

  const actions = (await client.listActions({ agentId: "agent-ai-cjs" })).reverse();
  assert.deepEqual(
    actions.map((a) => [a.tool, a.operation, a.status]),
    [
      ["http", "get", "succeeded"],
      ["stripe", "refund", "denied"],
    ],
  );
});
