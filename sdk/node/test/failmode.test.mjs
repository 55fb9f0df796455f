// Fail-closed (default) versus fail-open when the server is down.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import helpers from "./helpers/server.cjs";
import {
  ExecutionGovernorClient,
  FarameshConnectionError,
  FarameshServerError,
  resolveConfig,
} from "@faramesh/sdk";

const { FarameshServer, mockServer } = helpers;

let server;
let downUrl;
const fast = { retryBackoffFactor: 0.001, maxRetries: 1, agentId: "agent-failmode" };

before(async () => {
  server = await FarameshServer.start();
  // Up first: the same client settings work against a live server...
  const live = new ExecutionGovernorClient({ baseUrl: server.url, ...fast });
  assert.equal((await live.submitAction("http", "get", { url: "https://example.com" })).status, "allowed");
  // ...then the server goes down for the rest of the file.
  await server.stop();
  downUrl = server.url;
});

after(async () => {
  await server?.dispose();
});

describe("fail-closed (the default)", () => {
  test("is the default", () => {
    assert.equal(resolveConfig({}).failMode, "closed");
    assert.equal(resolveConfig({ failOpen: false }).failMode, "closed");
  });

  test("submitAction, gateDecide and gateGovern throw FarameshConnectionError", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: downUrl, ...fast });
    await assert.rejects(client.submitAction("http", "get", {}), FarameshConnectionError);
    await assert.rejects(client.gateDecide("http", "get", {}), FarameshConnectionError);
    await assert.rejects(client.gateGovern("http", "get", {}), FarameshConnectionError);
    await assert.rejects(client.submitAndWait("http", "get", {}), FarameshConnectionError);
  });

  test("a governed function does not run", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: downUrl, ...fast });
    let ran = false;
    const tool = client.govern(() => (ran = true), { tool: "http", operation: "get" });
    await assert.rejects(tool(), FarameshConnectionError);
    assert.equal(ran, false);
  });
});

describe("fail-open", () => {
  test("submitAction returns a stand-in allowed action marked fail_open", async () => {
    const errors = [];
    const client = new ExecutionGovernorClient({ baseUrl: downUrl, ...fast, failOpen: true, onError: (e) => errors.push(e) });
    const action = await client.submitAction("shell", "run", { cmd: "ls" });
    assert.equal(action.fail_open, true);
    assert.equal(action.status, "allowed");
    assert.equal(action.decision, "allow");
    assert.equal(action.reason_code, "FAIL_OPEN");
    assert.equal(action.id, "");
    assert.deepEqual(action.params, { cmd: "ls" });
    assert.ok(errors.some((e) => e instanceof FarameshConnectionError), "the failure is still reported to onError");
  });

  test("gateDecide and gateGovern return a stand-in EXECUTE decision", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: downUrl, ...fast, failMode: "open" });
    const decision = await client.gateDecide("stripe", "refund", {});
    assert.deepEqual([decision.outcome, decision.reason_code, decision.fail_open], ["EXECUTE", "FAIL_OPEN", true]);
    assert.equal((await client.gateGovern("stripe", "refund", {})).outcome, "EXECUTE");
    const waited = await client.submitAndWait("shell", "run", {}, {}, { requireApproval: true, autoStart: true });
    assert.equal(waited.fail_open, true);
  });

  test("a governed function runs and nothing is reported", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: downUrl, ...fast, failOpen: true });
    const tool = client.govern(async (x) => x * 2, { tool: "calc", operation: "double" });
    assert.equal(await tool(21), 42);
  });

  test("from the environment", () => {
    const saved = process.env.FARAMESH_FAIL_MODE;
    process.env.FARAMESH_FAIL_MODE = "open";
    try {
      assert.equal(new ExecutionGovernorClient({ baseUrl: downUrl }).config.failMode, "open");
      assert.equal(new ExecutionGovernorClient({ baseUrl: downUrl, failOpen: false }).config.failMode, "closed");
    } finally {
      if (saved === undefined) delete process.env.FARAMESH_FAIL_MODE;
      else process.env.FARAMESH_FAIL_MODE = saved;
    }
  });

  test("only unreachability fails open: reads still throw, and a 500 (a bug, not an outage) throws", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: downUrl, ...fast, failOpen: true });
    await assert.rejects(client.getAction("x"), FarameshConnectionError);
    await assert.rejects(client.listActions(), FarameshConnectionError);

    const broken = await mockServer(() => ({ status: 500, body: { detail: "bug" } }));
    const unavailable = await mockServer(() => ({ status: 503, body: { detail: "database unavailable" } }));
    try {
      const c500 = new ExecutionGovernorClient({ baseUrl: broken.url, ...fast, failOpen: true });
      await assert.rejects(c500.submitAction("http", "get", {}), FarameshServerError);
      const c503 = new ExecutionGovernorClient({ baseUrl: unavailable.url, ...fast, failOpen: true });
      assert.equal((await c503.submitAction("http", "get", {})).fail_open, true);
    } finally {
      await broken.close();
      await unavailable.close();
    }
  });
});
