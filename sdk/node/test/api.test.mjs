// The functional API (ES module entry point) against a real server: every function.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import helpers from "./helpers/server.cjs";
import sdkDefault, * as sdk from "@faramesh/sdk";

const { FarameshServer, waitFor } = helpers;
const {
  allow,
  apply,
  approveAction,
  blockUntilApproved,
  configure,
  deny,
  denyAction,
  executeIfAllowed,
  gateDecide,
  gateDecideDict,
  gateGovern,
  getAction,
  getActiveConfig,
  getEvents,
  getPolicyInfo,
  health,
  listActions,
  ready,
  replayAction,
  replayDecision,
  reportResult,
  startAction,
  submitAction,
  submitActions,
  submitActionsBulk,
  submitAndWait,
  waitForApproval,
  waitForCompletion,
} = sdk;

let server;
const GET = { url: "https://example.com/status" };

before(async () => {
  server = await FarameshServer.start();
  configure({ baseUrl: server.url, retryBackoffFactor: 0.01, maxRetries: 2, agentId: "configured-agent" });
});

after(async () => {
  await server?.dispose();
});

describe("configuration", () => {
  test("configure merges options; getActiveConfig shows the resolved settings", () => {
    const config = getActiveConfig();
    assert.equal(config.baseUrl, server.url);
    assert.equal(config.agentId, "configured-agent");
    assert.equal(config.maxRetries, 2);
    assert.equal(config.failMode, "closed");
    assert.equal(config.timeoutMs, 30000);
  });

  test("settings come from the environment when not given", () => {
    const saved = { ...process.env };
    try {
      process.env.FARAMESH_BASE_URL = "http://127.0.0.1:9/";
      process.env.FARAMESH_TOKEN = "t1, t2";
      process.env.FARAMESH_AGENT_ID = "env-agent";
      process.env.FARAMESH_RETRIES = "5";
      process.env.FARAMESH_RETRY_BACKOFF = "0.25";
      process.env.FARAMESH_FAIL_MODE = "open";
      const c = sdk.resolveConfig();
      assert.deepEqual(
        [c.baseUrl, c.token, c.agentId, c.maxRetries, c.retryBackoffFactor, c.failMode],
        ["http://127.0.0.1:9", "t1", "env-agent", 5, 0.25, "open"],
      );
      delete process.env.FARAMESH_BASE_URL;
      delete process.env.FARAMESH_TOKEN;
      delete process.env.FARAMESH_FAIL_MODE;
      process.env.FARA_API_BASE = "http://127.0.0.1:10";
      process.env.FARA_AUTH_TOKEN = "legacy";
      process.env.FARAMESH_FAIL_OPEN = "1";
      const legacy = sdk.resolveConfig({ maxRetries: 0 });
      assert.deepEqual([legacy.baseUrl, legacy.token, legacy.failMode, legacy.maxRetries], ["http://127.0.0.1:10", "legacy", "open", 0]);
      assert.equal(sdk.resolveConfig({ failOpen: false }).failMode, "closed");
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});

describe("server information", () => {
  test("health, ready and getPolicyInfo", async () => {
    assert.deepEqual(await health(), { status: "healthy" });
    assert.deepEqual(await ready(), { status: "ready" });
    const info = await getPolicyInfo();
    assert.equal(info.exists, true);
    assert.equal(info.rules.length, 3);
    assert.equal(info.rules[0].description, "Allow HTTP GET requests");
    assert.match(info.policy_hash, /^[0-9a-f]{64}$/);
  });
});

describe("submitting", () => {
  test("submitAction records an allowed action", async () => {
    const action = await submitAction("agent-submit", "http", "get", GET, { run: 1 });
    assert.equal(action.status, "allowed");
    assert.equal(action.decision, "allow");
    assert.equal(action.outcome, "EXECUTE");
    assert.equal(action.reason_code, "POLICY_ALLOW");
    assert.equal(action.agent_id, "agent-submit");
    assert.deepEqual(action.params, GET);
    assert.deepEqual(action.context, { run: 1 });
    assert.match(action.request_hash, /^[0-9a-f]{64}$/);
    assert.equal(action.approval_token, null);
  });

  test("the object form uses the configured agent id and an explicit Idempotency-Key", async () => {
    const key = `key-${Date.now()}`;
    const first = await submitAction({ tool: "http", operation: "get", params: GET, idempotencyKey: key });
    assert.equal(first.agent_id, "configured-agent");
    const again = await submitAction({ tool: "http", operation: "get", params: GET, idempotencyKey: key });
    assert.equal(again.id, first.id, "the same key and body return the original action");
  });

  test("a denied submission is recorded and rejects with FarameshPolicyError", async () => {
    const error = await submitAction("agent-deny", "stripe", "refund", { amount: 5000 }).then(
      () => assert.fail("expected a denial"),
      (e) => e,
    );
    assert.ok(error instanceof sdk.FarameshPolicyError);
    assert.ok(error instanceof sdk.FarameshError);
    assert.equal(error.action.status, "denied");
    assert.equal(error.reason, "Default deny rule");
    assert.equal(error.reasonCode, "POLICY_DENY");
    assert.equal(error.detail, "Default deny rule");
    assert.equal((await getAction(error.action.id)).status, "denied");
  });

  test("a shell command waits for approval and carries an approval token", async () => {
    const action = await submitAction("agent-pending", "shell", "run", { cmd: "echo hi" });
    assert.equal(action.status, "pending_approval");
    assert.equal(action.decision, "require_approval");
    assert.equal(action.outcome, "ABSTAIN");
    assert.equal(action.risk_level, "medium");
    assert.match(action.approval_token, /\S+/);
  });

  test("submitActions and submitActionsBulk submit one by one", async () => {
    const specs = [
      { agent_id: "agent-batch", tool: "http", operation: "get", params: GET },
      { agent_id: "agent-batch", tool: "stripe", operation: "refund", params: { amount: 1 } },
    ];
    const results = await submitActions(specs);
    assert.equal(results[0].status, "allowed");
    assert.match(results[1].error, /denied by policy/);
    assert.deepEqual(results[1].action_spec, specs[1]);

    const bulk = await submitActionsBulk(specs);
    assert.equal(bulk[0].status, "allowed");
    assert.equal(bulk[1].index, 1);
    const error = await submitActionsBulk(specs, { raiseOnError: true }).catch((e) => e);
    assert.ok(error instanceof sdk.FarameshBatchError);
    assert.equal(error.successes.length, 1);
    assert.equal(error.errors.length, 1);
    assert.ok(error.errors[0].cause instanceof sdk.FarameshPolicyError);
  });

  test("apply submits the action described in a JSON file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "faramesh-apply-"));
    try {
      const file = join(dir, "action.json");
      writeFileSync(file, JSON.stringify({ agent_id: "agent-apply", tool: "http", operation: "get", params: GET }));
      const action = await apply(file);
      assert.equal(action.agent_id, "agent-apply");
      assert.equal(action.status, "allowed");
      writeFileSync(file, JSON.stringify({ tool: "http" }));
      await assert.rejects(apply(file), sdk.FarameshValidationError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("reading", () => {
  test("getAction, listActions with filters, getEvents", async () => {
    const a = await submitAction("agent-list", "http", "get", GET);
    const b = await submitAction("agent-list", "shell", "run", { cmd: "true" });
    assert.deepEqual((await getAction(a.id)).params, GET);

    const mine = await listActions({ agent_id: "agent-list" });
    assert.deepEqual(mine.map((x) => x.id), [b.id, a.id], "newest first");
    const pending = await listActions({ agentId: "agent-list", status: "pending_approval" });
    assert.deepEqual(pending.map((x) => x.id), [b.id]);
    const http = await listActions({ agent_id: "agent-list", tool: "http", limit: 1 });
    assert.deepEqual(http.map((x) => x.id), [a.id]);
    assert.equal((await listActions({ agent_id: "agent-list", offset: 1 })).length, 1);
    const found = await listActions({ search: "AGENT-LIS" });
    assert.deepEqual(found.map((x) => x.id), [b.id, a.id], "a piece of the agent's name, any case");
    const run = await listActions({ search: "ru", agent_id: "agent-list" });
    assert.deepEqual(run.map((x) => x.id), [b.id], "a piece of an operation's name");

    const events = await getEvents(a.id);
    assert.deepEqual(events.map((e) => e.event_type), ["created", "decision_made"]);
    assert.equal(events[0].prev_hash, null);
    assert.equal(events[1].prev_hash, events[0].record_hash);
  });
});

describe("approval and execution", () => {
  test("approveAction fetches the token itself; the shell executor runs the approved command", async () => {
    const action = await submitAction("agent-approve", "shell", "run", { cmd: "echo approved" });
    const approved = await approveAction(action.id, { reason: "looks fine" });
    assert.equal(approved.status, "approved");
    assert.equal(approved.decision, "allow");
    assert.equal(approved.reason, "looks fine");
    assert.equal(approved.approval_token, null);
    const started = await startAction(action.id);
    assert.ok(["executing", "succeeded"].includes(started.status));
    const done = await waitForCompletion(action.id, 20, 20000);
    assert.equal(done.status, "succeeded");
    assert.equal(done.result.stdout, "approved\n");
    const types = (await getEvents(action.id)).map((e) => e.event_type);
    assert.deepEqual(types, ["created", "decision_made", "approved", "started", "succeeded"]);
  });

  test("approveAction and denyAction with an explicit token (positional), and the allow/deny aliases", async () => {
    const one = await submitAction("agent-decide", "shell", "run", { cmd: "true" });
    assert.equal((await approveAction(one.id, one.approval_token, "positional")).status, "approved");
    const two = await submitAction("agent-decide", "shell", "run", { cmd: "true" });
    const denied = await denyAction(two.id, two.approval_token, "too risky");
    assert.equal(denied.status, "denied");
    assert.equal(denied.decision, "deny");
    assert.equal(denied.reason, "too risky");
    const three = await submitAction("agent-decide", "shell", "run", { cmd: "true" });
    assert.equal((await allow(three.id)).status, "approved");
    const four = await submitAction("agent-decide", "shell", "run", { cmd: "true" });
    assert.equal((await deny(four.id, { reason: "no" })).status, "denied");
  });

  test("startAction and reportResult drive a tool without an executor", async () => {
    const action = await submitAction("agent-result", "http", "get", GET);
    const started = await startAction(action.id);
    assert.equal(started.status, "executing");
    const done = await reportResult(action.id, { success: true, output: { rows: 3 } });
    assert.equal(done.status, "succeeded");
    const events = await getEvents(action.id);
    assert.deepEqual(events.map((e) => e.event_type), ["created", "decision_made", "started", "succeeded"]);
    assert.deepEqual(events[3].meta.output, { rows: 3 });
  });

  test("reportResult records a failure straight from allowed (positional form)", async () => {
    const action = await submitAction("agent-result", "http", "get", GET);
    const failed = await reportResult(action.id, false, "connection reset by peer");
    assert.equal(failed.status, "failed");
    const last = (await getEvents(action.id)).at(-1);
    assert.equal(last.event_type, "failed");
    assert.equal(last.meta.error, "connection reset by peer");
  });

  test("waitForCompletion returns finished actions and times out on unfinished ones", async () => {
    const denied = await submitAction("agent-wait", "shell", "run", { cmd: "true" });
    await denyAction(denied.id);
    assert.equal((await waitForCompletion(denied.id, { pollIntervalMs: 10, timeoutMs: 5000 })).status, "denied");
    const pending = await submitAction("agent-wait", "shell", "run", { cmd: "true" });
    const error = await waitForCompletion(pending.id, { pollIntervalMs: 10, timeoutMs: 50 }).catch((e) => e);
    assert.ok(error instanceof sdk.FarameshTimeoutError);
    assert.equal(error.action.status, "pending_approval");
  });

  test("blockUntilApproved resolves when another party approves, rejects when it denies", async () => {
    const one = await submitAction("agent-block", "shell", "run", { cmd: "true" });
    const waiting = blockUntilApproved(one.id, { pollIntervalMs: 10 });
    await approveAction(one.id);
    assert.equal((await waiting).status, "approved");

    const two = await submitAction("agent-block", "shell", "run", { cmd: "true" });
    const waiting2 = waitForApproval(two.id, { pollIntervalMs: 10 });
    await denyAction(two.id, { reason: "nope" });
    const error = await waiting2.catch((e) => e);
    assert.ok(error instanceof sdk.FarameshDeniedError);
    assert.ok(error instanceof sdk.FarameshPolicyError);
    assert.equal(error.action.status, "denied");
    assert.equal(error.reason, "nope");
  });

  test("an aborted wait rejects with the signal's reason", async () => {
    const action = await submitAction("agent-block", "shell", "run", { cmd: "true" });
    const controller = new AbortController();
    const waiting = blockUntilApproved(action.id, { pollIntervalMs: 10, signal: controller.signal });
    controller.abort(new Error("gave up"));
    await assert.rejects(waiting, /gave up/);
  });

  test("submitAndWait: returns, waits for approval, auto-approves and auto-starts", async () => {
    const allowed = await submitAndWait("agent-saw", "http", "get", GET);
    assert.equal(allowed.status, "allowed");
    const pending = await submitAndWait({ agentId: "agent-saw", tool: "shell", operation: "run", params: { cmd: "true" } });
    assert.equal(pending.status, "pending_approval");

    const finished = await submitAndWait("agent-saw", "shell", "run", { cmd: "echo auto" }, {}, {
      autoApprove: true,
      autoStart: true,
      pollIntervalMs: 10,
      timeoutMs: 20000,
    });
    assert.equal(finished.status, "succeeded");
    assert.equal(finished.result.stdout, "auto\n");

    const waiting = submitAndWait({
      agentId: "agent-saw-approve",
      tool: "shell",
      operation: "run",
      params: { cmd: "true" },
      requireApproval: true,
      pollIntervalMs: 10,
    });
    const [mine] = await waitFor(async () => {
      const list = await listActions({ agent_id: "agent-saw-approve", status: "pending_approval" });
      return list.length ? list : undefined;
    }, { what: "the pending action" });
    await approveAction(mine.id);
    assert.equal((await waiting).status, "approved");

    await assert.rejects(submitAndWait("agent-saw", "stripe", "refund", {}), sdk.FarameshPolicyError);
  });

  test("replayAction submits a copy with replayed_from; replaying a pending action is a conflict", async () => {
    const original = await submitAction("agent-replay", "http", "get", GET, { note: "x" });
    const copy = await replayAction(original.id);
    assert.notEqual(copy.id, original.id);
    assert.equal(copy.status, "allowed");
    assert.deepEqual(copy.params, GET);
    assert.equal(copy.context.replayed_from, original.id);
    assert.equal(copy.context.note, "x");
    const pending = await submitAction("agent-replay", "shell", "run", { cmd: "true" });
    const error = await replayAction(pending.id).catch((e) => e);
    assert.ok(error instanceof sdk.FarameshConflictError);
    assert.equal(error.currentStatus, "pending_approval");
  });
});

describe("decisions without recording", () => {
  test("gateDecide and gateDecideDict return decisions and store nothing", async () => {
    const before = await listActions({ agent_id: "agent-gate" });
    const allowDecision = await gateDecide("agent-gate", "http", "get", GET);
    assert.equal(allowDecision.outcome, "EXECUTE");
    assert.equal(allowDecision.reason_code, "POLICY_ALLOW");
    assert.match(allowDecision.request_hash, /^[0-9a-f]{64}$/);
    const halt = await gateDecide({ agentId: "agent-gate", tool: "stripe", operation: "refund" });
    assert.equal(halt.outcome, "HALT");
    const abstain = await gateDecideDict("agent-gate", "shell", "run", { cmd: "ls" });
    assert.equal(abstain.outcome, "ABSTAIN");
    assert.deepEqual(await listActions({ agent_id: "agent-gate" }), before);
  });

  test("gateGovern returns EXECUTE decisions and throws DenyError / DeferredError", async () => {
    assert.equal((await gateGovern("agent-gate", "http", "get", GET)).outcome, "EXECUTE");
    const denyError = await gateGovern("agent-gate", "stripe", "refund", {}).catch((e) => e);
    assert.ok(denyError instanceof sdk.DenyError);
    assert.ok(denyError instanceof sdk.FarameshDeniedError);
    assert.equal(denyError.reasonCode, "POLICY_DENY");
    assert.equal(denyError.decision.outcome, "HALT");
    const deferred = await gateGovern({ agentId: "agent-gate", tool: "shell", operation: "run" }).catch((e) => e);
    assert.ok(deferred instanceof sdk.DeferredError);
    assert.equal(deferred.reasonCode, "POLICY_REQUIRE_APPROVAL");
  });

  test("replayDecision re-decides a recorded action and finds it identical", async () => {
    const action = await submitAction("agent-replay-decision", "http", "get", GET);
    const byId = await replayDecision({ actionId: action.id });
    assert.equal(byId.success, true, byId.mismatches.join("; "));
    assert.equal(byId.replayedOutcome, "EXECUTE");
    assert.equal(byId.requestHashMatch, true);
    const byProvenance = await replayDecision({ provenanceId: action.provenance_id });
    assert.equal(byProvenance.success, true);
    await assert.rejects(replayDecision({}), sdk.FarameshValidationError);
  });

  test("executeIfAllowed runs the executor only on EXECUTE", async () => {
    const calls = [];
    const executor = async (tool, op, params) => {
      calls.push([tool, op, params]);
      return "ran";
    };
    const yes = await executeIfAllowed({ agentId: "agent-exec", tool: "http", operation: "get", params: GET, executor });
    assert.deepEqual([yes.executed, yes.executionResult, yes.outcome], [true, "ran", "EXECUTE"]);
    const no = await executeIfAllowed({ agentId: "agent-exec", tool: "shell", operation: "run", params: {}, executor });
    assert.deepEqual([no.executed, no.outcome, no.reasonCode], [false, "ABSTAIN", "POLICY_REQUIRE_APPROVAL"]);
    const broken = await executeIfAllowed({
      tool: "http",
      operation: "get",
      executor: () => {
        throw new Error("kaput");
      },
    });
    assert.deepEqual([broken.executed, broken.executionError], [false, "kaput"]);
    assert.equal(calls.length, 1);
  });
});

describe("module surface", () => {
  test("Python-style names and the default export are the same functions", () => {
    assert.equal(sdk.submit_action, submitAction);
    assert.equal(sdk.get_events, getEvents);
    assert.equal(sdk.wait_for_completion, waitForCompletion);
    assert.equal(sdk.GovernorError, sdk.FarameshError);
    assert.equal(sdkDefault.submitAction, submitAction);
    assert.equal(sdk.__version__, sdk.VERSION);
  });
});
