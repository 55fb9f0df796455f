#!/usr/bin/env node
/**
 * A Vercel AI SDK agent whose shell and HTTP tools are governed by Faramesh.
 *
 * The tools are ordinary AI SDK tools made with `tool()` and wrapped by `governTools` from
 * `@faramesh/sdk/ai`; the agent loop is the AI SDK's own (`generateText` with tools and a stop
 * condition). The model is the AI SDK's scripted mock model (`MockLanguageModelV3` from
 * `ai/test`), so this runs without network access or an API key; swap in any real model
 * (`openai("gpt-4o")`, ...) and nothing else changes.
 *
 * The script makes three tool calls with three decisions under examples/policy.yaml:
 *
 *   1. http  GET <server>/health                     allowed: runs at once
 *   2. shell rm -rf /tmp/faramesh-example-scratch    denied: the model gets "Faramesh denied
 *                                                   this call: <reason>" as the tool's error
 *   3. shell ls -la                                  needs approval: waits until you run the
 *                                                   printed `faramesh approve <id>` command
 *
 * Run (see examples/README.md):
 *     faramesh serve --policy examples/policy.yaml        # terminal 1
 *     node examples/vercel_ai_agent.mjs                   # terminal 2
 */

import { spawnSync } from "node:child_process";
import { generateText, stepCountIs, tool } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { z } from "zod";
import { DEFAULT_BASE_URL, configure, getActiveConfig } from "@faramesh/sdk";
import { governTools } from "@faramesh/sdk/ai";

const AGENT_ID = "vercel-ai-example-agent";
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

const shell = tool({
  description: "Run a shell command on this machine and return what it printed.",
  inputSchema: z.object({ cmd: z.string().describe("the command line") }),
  execute: async ({ cmd }) => {
    const done = spawnSync(cmd, { shell: true, encoding: "utf8", timeout: 60_000 });
    return (done.stdout ?? "") + (done.stderr ?? "");
  },
});

const http = tool({
  description: "HTTP GET a URL on this machine (localhost only); returns the status and body.",
  inputSchema: z.object({ url: z.string().describe("an http:// URL on localhost") }),
  execute: async ({ url }) => {
    if (!LOCAL_HOSTS.has(new URL(url).hostname)) return "refused: this tool only talks to localhost";
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return `HTTP ${response.status} ${await response.text()}`;
  },
});

/** Stands in for a real model: calls the three tools, one per step, then answers. */
function scriptedModel(serverUrl) {
  const usage = {
    inputTokens: { total: 0, noCache: 0, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: 0, text: 0, reasoning: 0 },
  };
  const call = (toolName, input, n) => ({
    content: [{ type: "tool-call", toolCallId: `call_${n}`, toolName, input: JSON.stringify(input) }],
    finishReason: { unified: "tool-calls", raw: "tool_calls" },
    usage,
    warnings: [],
  });
  return new MockLanguageModelV3({
    doGenerate: [
      call("http", { url: `${serverUrl}/health` }, 1),
      call("shell", { cmd: "rm -rf /tmp/faramesh-example-scratch" }, 2),
      call("shell", { cmd: "ls -la" }, 3),
      {
        content: [
          {
            type: "text",
            text:
              "The Faramesh server is healthy. I was not allowed to delete the scratch directory, " +
              "and after approval I listed the working directory.",
          },
        ],
        finishReason: { unified: "stop", raw: "stop" },
        usage,
        warnings: [],
      },
    ],
  });
}

function urlFlag() {
  const { baseUrl } = getActiveConfig();
  return baseUrl === DEFAULT_BASE_URL ? "" : ` --url ${baseUrl}`;
}

/** Called by the governed tools when a call needs a human: say how to approve it. */
function approvalHint(action) {
  console.log(`    [faramesh] ${action.tool}/${action.operation} needs approval: ${action.reason}`);
  console.log("    [faramesh] approve it from another terminal with:");
  console.log(`        faramesh approve ${action.id}${urlFlag()}`);
  console.log(`    [faramesh] (or deny it: faramesh deny ${action.id}${urlFlag()})`);
  console.log("    [faramesh] waiting for a decision ...");
}

function shorten(value, lines = 8) {
  const parts = String(value).trim().split("\n");
  const more = parts.length > lines ? `\n       ... (${parts.length - lines} more lines)` : "";
  return parts.slice(0, lines).join("\n       ") + more;
}

async function main() {
  // FARAMESH_BASE_URL / FARAMESH_TOKEN are read from the environment when set.
  configure({ agentId: AGENT_ID });
  const { baseUrl } = getActiveConfig();
  console.log(`Vercel AI SDK agent ${AGENT_ID} governed by Faramesh at ${baseUrl}`);

  const tools = governTools(
    { shell, http },
    {
      onPending: approvalHint,
      approvalTimeoutMs: 600_000,
      overrides: { shell: { operation: "run" }, http: { operation: "get" } },
    },
  );

  const result = await generateText({
    model: scriptedModel(baseUrl),
    tools,
    system: "You are a careful operations agent. Use the tools.",
    prompt:
      "Check the server's health, clean up /tmp/faramesh-example-scratch, " +
      "then show me what is in the working directory.",
    stopWhen: stepCountIs(10),
    experimental_onToolCallStart: ({ toolCall }) => {
      console.log(`\nmodel calls ${toolCall.toolName}(${JSON.stringify(toolCall.input)})`);
    },
    experimental_onToolCallFinish: (call) => {
      // A refused call is a tool error whose text is what the model is given.
      const shown = call.success ? call.output : String(call.error);
      console.log(`    -> ${shorten(shown)}`);
    },
  });

  console.log(`\nmodel: ${result.text}`);
  console.log(`\nEvery call is recorded: faramesh list${urlFlag()}`);
}

await main();
