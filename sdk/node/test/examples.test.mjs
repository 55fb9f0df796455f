// The Node examples in examples/ run end to end against a server with examples/policy.yaml;
// the pending call is approved with the CLI command the example prints (as a person would).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import helpers from "./helpers/server.cjs";
import { ExecutionGovernorClient } from "@faramesh/sdk";

const { FarameshServer, REPO_ROOT, within } = helpers;
const EXAMPLES = path.join(REPO_ROOT, "examples");
const REGISTER = new URL("./helpers/examples-register.mjs", import.meta.url).href;
const APPROVE = /faramesh approve ([0-9a-f-]{36})( --url (\S+))?/;
const WAIT_MS = 60_000;

let server;
let workdir;

before(async () => {
  server = await FarameshServer.start({ policy: path.join(EXAMPLES, "policy.yaml") });
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "faramesh-node-example-"));
  fs.writeFileSync(path.join(workdir, "visible-to-ls.txt"), "hello\n");
});

after(async () => {
  await server?.dispose();
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

/** The environment of the example: the caller's without Faramesh settings, plus `extra`. */
function exampleEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("FARAMESH_") && !k.startsWith("FARA_")) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Runs an example; when it prints the approve command, runs that command with the CLI. */
async function runExample(script) {
  const child = spawn(process.execPath, ["--import", REGISTER, path.join(EXAMPLES, script)], {
    cwd: workdir,
    env: exampleEnv({ FARAMESH_BASE_URL: server.url, NO_COLOR: "1" }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const output = [];
  let approved = false;
  let printedUrl;
  const approvals = [];
  child.stderr.on("data", (d) => output.push(`[stderr] ${String(d).trimEnd()}`));
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    output.push(line);
    const match = APPROVE.exec(line);
    if (match && !approved) {
      // Run the printed command itself: `faramesh approve <id> --url <server>`.
      approved = true;
      printedUrl = match[3];
      const args = ["approve", match[1], ...(match[3] ? ["--url", match[3]] : []), "--reason", "approved by the example test"];
      approvals.push(promisify(execFile)(process.env.FARAMESH_BIN, [...args, "--no-color"], { env: exampleEnv({}) }));
    }
  });
  try {
    const status = await within(exited, WAIT_MS, `${script} to finish`);
    await Promise.all(approvals);
    assert.deepEqual(status, { code: 0, signal: null }, output.join("\n"));
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  assert.ok(approved, `the example never printed a \`faramesh approve <id>\` command:\n${output.join("\n")}`);
  assert.equal(printedUrl, server.url, "the printed command names the server (it is not on the default address)");
  return output.join("\n");
}

test("vercel_ai_agent.mjs: an allowed, a denied and an approved call through the AI SDK", async () => {
  const output = await runExample("vercel_ai_agent.mjs");

  assert.match(output, /HTTP 200 \{"status":"healthy"\}/);
  assert.match(output, /-> Faramesh denied this call: Destructive shell commands are blocked/);
  assert.match(output, /visible-to-ls\.txt/, "`ls -la` ran after the approval");
  assert.match(output, /model: The Faramesh server is healthy\./);

  const client = new ExecutionGovernorClient({ baseUrl: server.url });
  const actions = (await client.listActions({ agentId: "vercel-ai-example-agent" })).reverse();
  assert.deepEqual(
    actions.map((a) => [a.tool, a.operation, a.status]),
    [
      ["http", "get", "succeeded"],
      ["shell", "run", "denied"],
      ["shell", "run", "succeeded"],
    ],
  );
  assert.deepEqual(actions[0].params, { url: `${server.url}/health` });
  assert.deepEqual(actions[1].params, { cmd: "rm -rf /tmp/faramesh-example-scratch" });
  assert.deepEqual(actions[2].params, { cmd: "ls -la" });
  assert.equal(actions[2].reason, "approved by the example test");
  assert.equal(actions[0].context.integration, "vercel-ai-sdk");
  const lastEvent = (await client.getEvents(actions[2].id)).at(-1);
  assert.equal(lastEvent.event_type, "succeeded");
  assert.match(lastEvent.meta.output, /visible-to-ls\.txt/, "the command's output is reported");
});
