"use strict";
// The CommonJS entry point and the class API (ExecutionGovernorClient) against a real server.
const assert = require("node:assert/strict");
const { after, before, describe, test } = require("node:test");
const { FarameshServer, collect, deferred, within } = require("./helpers/server.cjs");
const sdk = require("@faramesh/sdk");

const { ExecutionGovernorClient } = sdk;

let server;
let client;

before(async () => {
  server = await FarameshServer.start();
  client = new ExecutionGovernorClient(server.url, { agentId: "agent-cjs", retryBackoffFactor: 0.001 });
});

after(async () => {
  if (server) await server.dispose();
});

describe("CommonJS entry point", () => {
  test("require() loads the CommonJS build with the same names as the ES module build", async () => {
    assert.match(require.resolve("@faramesh/sdk"), /dist[\\/]cjs[\\/]index\.js$/);
    const esm = await import("@faramesh/sdk");
    const names = (m) => Object.keys(m).filter((k) => k !== "default" && k !== "module.exports").sort();
    assert.deepEqual(names(sdk), names(esm));
    assert.equal(typeof sdk.submitAction, "function");
    assert.equal(sdk.default.submitAction, sdk.submitAction);
    // Two builds, two sets of classes: each entry point's errors are its own.
    assert.notEqual(esm.FarameshError, sdk.FarameshError);
  });

  test("error classes form one hierarchy with names", () => {
    const e = new sdk.FarameshForbiddenError("no", { status: 403, detail: "no" });
    assert.ok(e instanceof sdk.FarameshAuthError && e instanceof sdk.FarameshError && e instanceof Error);
    assert.equal(e.name, "FarameshForbiddenError");
    assert.ok(new sdk.DenyError("x") instanceof sdk.FarameshPolicyError);
    assert.ok(new sdk.FarameshDeniedError("x") instanceof sdk.FarameshPolicyError);
    assert.ok(new sdk.DeferredError("x") instanceof sdk.FarameshError);
  });
});

describe("ExecutionGovernorClient", () => {
  test("construction: a URL with options, a config object, or the environment", () => {
    assert.equal(client.agentId, "agent-cjs");
    assert.equal(client.config.baseUrl, server.url);
    const fromObject = new ExecutionGovernorClient({ baseUrl: `${server.url}/`, agentId: "x" });
    assert.equal(fromObject.config.baseUrl, server.url, "a trailing slash is dropped");
    const saved = process.env.FARAMESH_BASE_URL;
    process.env.FARAMESH_BASE_URL = server.url;
    try {
      assert.equal(ExecutionGovernorClient.fromEnv().config.baseUrl, server.url);
    } finally {
      if (saved === undefined) delete process.env.FARAMESH_BASE_URL;
      else process.env.FARAMESH_BASE_URL = saved;
    }
    const copy = client.withOptions({ agentId: "other" });
    assert.deepEqual([copy.agentId, copy.config.baseUrl], ["other", server.url]);
  });

  test("submit, read, approve, start, report, events: the whole lifecycle", async () => {
    const allowed = await client.submitAction("http", "get", { url: "https://example.com" }, { trace: "t1" });
    assert.equal(allowed.agent_id, "agent-cjs", "the client's agent id");
    assert.equal((await client.getAction(allowed.id)).status, "allowed");
    assert.equal((await client.startAction(allowed.id)).status, "executing");
    assert.equal((await client.reportResult(allowed.id, true, undefined, { ok: 1 })).status, "succeeded");

    const pending = await client.submitAction({ agentId: "agent-cjs-2", tool: "shell", operation: "run", params: { cmd: "echo cjs" } });
    assert.equal(pending.agent_id, "agent-cjs-2");
    assert.equal((await client.approveAction(pending.id, { reason: "fine" })).status, "approved");
    await client.startAction(pending.id);
    const done = await client.waitForCompletion(pending.id, { pollIntervalMs: 10, timeoutMs: 20000 });
    assert.equal(done.status, "succeeded");
    assert.equal(done.result.stdout, "cjs\n");

    const rejected = await client.submitAction("shell", "run", { cmd: "true" });
    assert.equal((await client.denyAction(rejected.id, undefined, "no")).status, "denied");

    const listed = await client.listActions({ agentId: "agent-cjs" });
    assert.deepEqual(listed.map((a) => a.id), [rejected.id, allowed.id]);
    const events = await client.getEvents(allowed.id);
    assert.deepEqual(events.map((e) => e.event_type), ["created", "decision_made", "started", "succeeded"]);
  });

  test("gateDecide, gateGovern, replayAction, submitAndWait and waitForApproval on the class", async () => {
    assert.equal((await client.gateDecide("http", "get", {})).outcome, "EXECUTE");
    await assert.rejects(client.gateGovern("shell", "run", {}), sdk.DeferredError);
    assert.equal((await client.gateDecideDict("stripe", "refund", {})).outcome, "HALT");

    const original = await client.submitAction("http", "get", { url: "u" });
    const copy = await client.replayAction(original.id);
    assert.equal(copy.context.replayed_from, original.id);

    const finished = await client.submitAndWait("shell", "run", { cmd: "true" }, {}, {
      autoApprove: true,
      autoStart: true,
      pollIntervalMs: 10,
    });
    assert.equal(finished.status, "succeeded");

    const pending = await client.submitAction("shell", "run", { cmd: "true" });
    const waiting = client.waitForApproval(pending.id, { pollIntervalMs: 10 });
    await client.approveAction(pending.id);
    assert.equal((await waiting).status, "approved");
    assert.equal((await client.replayDecision({ actionId: original.id })).success, true);
  });

  test("govern and the live stream work from CommonJS", async () => {
    const opened = deferred();
    const stream = client.eventStream({ agentId: "agent-cjs-govern", onOpen: opened.resolve });
    const seen = collect(stream);
    await within(opened.promise, 20000, "the stream to open");

    const add = client.govern((a, b) => a + b, { tool: "http", operation: "get", agentId: "agent-cjs-govern" });
    assert.equal(await add(2, 3), 5);
    const events = await seen.waitForCount(2);
    await seen.stop();
    assert.deepEqual(events.map((e) => e.data.status), ["allowed", "succeeded"]);
  });
});
