// govern: submit → wait for approval → run → report, through allow, deny and approval.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import helpers from "./helpers/server.cjs";
import {
  ExecutionGovernorClient,
  FarameshDeniedError,
  FarameshPolicyError,
  FarameshTimeoutError,
  approveAction,
  configure,
  denyAction,
  getAction,
  getEvents,
  govern,
} from "@faramesh/sdk";

const { FarameshServer, deferred } = helpers;

let server;

before(async () => {
  server = await FarameshServer.start();
  configure({ baseUrl: server.url, agentId: "agent-govern", retryBackoffFactor: 0.001 });
});

after(async () => {
  await server?.dispose();
});

/** The action a governed call created, found through the ledger of the agent's actions. */
async function lastAction(agentId) {
  const list = (await server.raw("GET", `/v1/actions?agent_id=${agentId}&limit=1`)).body;
  return list[0];
}

describe("govern", () => {
  test("allowed: the function runs once and its return value is reported as output", async () => {
    let calls = 0;
    const fetchStatus = govern(
      async function fetchStatus({ url }) {
        calls++;
        return { url, code: 200 };
      },
      { tool: "http", operation: "get", agentId: "agent-govern-allow" },
    );
    assert.equal(fetchStatus.tool, "http");
    assert.equal(fetchStatus.operation, "get");
    const result = await fetchStatus({ url: "https://example.com" });
    assert.deepEqual(result, { url: "https://example.com", code: 200 });
    assert.equal(calls, 1);

    const action = await lastAction("agent-govern-allow");
    assert.deepEqual(action.params, { url: "https://example.com" }, "a single object argument is the params");
    assert.equal(action.status, "succeeded");
    const events = await getEvents(action.id);
    assert.deepEqual(events.map((e) => e.event_type), ["created", "decision_made", "succeeded"]);
    assert.deepEqual(events.at(-1).meta.output, { url: "https://example.com", code: 200 });
  });

  test("denied by policy: the function never runs and FarameshPolicyError carries the action", async () => {
    let ran = false;
    const refund = govern({ tool: "stripe", operation: "refund", agentId: "agent-govern-deny" }, () => {
      ran = true;
    });
    const error = await refund({ amount: 5000 }).catch((e) => e);
    assert.ok(error instanceof FarameshPolicyError);
    assert.equal(error.action.status, "denied");
    assert.equal(error.reason, "Default deny rule");
    assert.equal(ran, false);
    assert.equal((await getAction(error.action.id)).status, "denied");
  });

  test("approval: waits while someone approves concurrently, then runs and reports", async () => {
    const pending = deferred();
    let ran = 0;
    const shell = govern((cmd) => {
      ran++;
      return `ran ${cmd}`;
    }, {
      tool: "shell",
      operation: "run",
      agentId: "agent-govern-approve",
      pollIntervalMs: 10,
      params: (cmd) => ({ cmd }),
      context: (cmd) => ({ ticket: `T-${cmd.length}` }),
      onPending: (action) => pending.resolve(action),
    });
    const running = shell("echo hello");
    const waiting = await pending.promise;
    assert.equal(waiting.status, "pending_approval");
    assert.deepEqual(waiting.params, { cmd: "echo hello" });
    assert.deepEqual(waiting.context, { ticket: "T-10" });
    assert.equal(ran, 0, "nothing runs before approval");

    const approved = await approveAction(waiting.id, { reason: "reviewed" });
    assert.equal(approved.status, "approved");
    assert.equal(await running, "ran echo hello");
    assert.equal(ran, 1);

    const events = await getEvents(waiting.id);
    assert.deepEqual(events.map((e) => e.event_type), ["created", "decision_made", "approved", "succeeded"]);
    assert.equal(events.at(-1).meta.output, "ran echo hello");
  });

  test("denied by a human while waiting: FarameshDeniedError and the function never runs", async () => {
    const pending = deferred();
    let ran = false;
    const shell = govern(() => (ran = true), {
      tool: "shell",
      agentId: "agent-govern-human-deny",
      pollIntervalMs: 10,
      onPending: (action) => pending.resolve(action),
    });
    const running = shell("rm", "-rf", "/tmp/x");
    const waiting = await pending.promise;
    assert.equal(waiting.operation, "invoke", "an anonymous function's operation");
    assert.deepEqual(waiting.params, { args: ["rm", "-rf", "/tmp/x"] }, "several arguments become args");
    await denyAction(waiting.id, { reason: "not on prod" });
    const error = await running.catch((e) => e);
    assert.ok(error instanceof FarameshDeniedError);
    assert.equal(error.reason, "not on prod");
    assert.equal(ran, false);
  });

  test("a throwing function is reported as failed and its own error is rethrown", async () => {
    const flaky = govern(
      async function get() {
        throw new RangeError("upstream returned 502");
      },
      { tool: "http", agentId: "agent-govern-fail" },
    );
    await assert.rejects(flaky(), (e) => e instanceof RangeError && e.message === "upstream returned 502");
    const action = await lastAction("agent-govern-fail");
    assert.equal(action.operation, "get", "the function's name is the default operation");
    assert.equal(action.status, "failed");
    const last = (await getEvents(action.id)).at(-1);
    assert.equal(last.event_type, "failed");
    assert.equal(last.meta.error, "upstream returned 502");
  });

  test("reportOutput: false reports success without the output; a function maps it", async () => {
    const quiet = govern(() => "secret", { tool: "http", operation: "get", agentId: "agent-govern-quiet", reportOutput: false });
    assert.equal(await quiet(), "secret");
    const quietAction = await lastAction("agent-govern-quiet");
    assert.equal(quietAction.status, "succeeded");
    assert.equal((await getEvents(quietAction.id)).at(-1).meta.output, null);

    const mapped = govern(() => ({ body: "x".repeat(10), status: 200 }), {
      tool: "http",
      operation: "get",
      agentId: "agent-govern-mapped",
      reportOutput: (r) => ({ status: r.status }),
    });
    await mapped();
    const mappedAction = await lastAction("agent-govern-mapped");
    assert.deepEqual((await getEvents(mappedAction.id)).at(-1).meta.output, { status: 200 });
  });

  test("an approval that does not come in time gives FarameshTimeoutError and leaves the action pending", async () => {
    const shell = govern(() => assert.fail("must not run"), {
      tool: "shell",
      operation: "run",
      agentId: "agent-govern-timeout",
      pollIntervalMs: 10,
      approvalTimeoutMs: 50,
    });
    const error = await shell({ cmd: "true" }).catch((e) => e);
    assert.ok(error instanceof FarameshTimeoutError);
    assert.equal((await lastAction("agent-govern-timeout")).status, "pending_approval");
  });

  test("the class form governs through its own client and keeps `this`", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: server.url, agentId: "agent-govern-class" });
    const counter = {
      n: 41,
      bump: client.govern(
        function () {
          return ++this.n;
        },
        { tool: "http", operation: "get" },
      ),
    };
    assert.equal(await counter.bump(), 42);
    const action = await lastAction("agent-govern-class");
    assert.equal(action.status, "succeeded");
    assert.deepEqual(action.params, { args: [] });
  });
});
