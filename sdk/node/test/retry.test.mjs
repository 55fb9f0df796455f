// Retries never duplicate: a proxy lets the server do the work but cuts the client off before
// the answer; the SDK retries with the same Idempotency-Key and the server records one action.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import helpers from "./helpers/server.cjs";
import { ExecutionGovernorClient, FarameshConflictError } from "@faramesh/sdk";

const { FarameshServer, dropFirstAnswerProxy } = helpers;

let server;

before(async () => {
  server = await FarameshServer.start();
});

after(async () => {
  await server?.dispose();
});

test("a submission whose answer is lost is retried with the same key and recorded once", async () => {
  const proxy = await dropFirstAnswerProxy(server.port, "POST /v1/actions ");
  try {
    const retried = [];
    const client = new ExecutionGovernorClient({
      baseUrl: proxy.url,
      agentId: "agent-retry-submit",
      retryBackoffFactor: 0.001,
      onError: (e) => retried.push(e),
    });
    const action = await client.submitAction("http", "get", { url: "https://example.com" });
    assert.equal(proxy.dropped, true, "the first answer was cut off");
    assert.equal(retried.length, 1);
    assert.equal(retried[0].name, "FarameshConnectionError");

    const posts = proxy.requests.filter((r) => r.method === "POST" && r.path === "/v1/actions");
    assert.equal(posts.length, 2, "the submission was sent twice");
    assert.ok(posts[0].idempotencyKey, "with an Idempotency-Key");
    assert.equal(posts[1].idempotencyKey, posts[0].idempotencyKey, "the same key both times");

    const recorded = (await server.raw("GET", "/v1/actions?agent_id=agent-retry-submit")).body;
    assert.equal(recorded.length, 1, "exactly one action exists");
    assert.equal(recorded[0].id, action.id);
    const events = (await server.raw("GET", `/v1/actions/${action.id}/events`)).body;
    assert.deepEqual(events.map((e) => e.event_type), ["created", "decision_made"]);
  } finally {
    await proxy.close();
  }
});

test("an approval whose answer is lost is retried; the retry's 409 is recognised as our own success", async () => {
  const pending = (
    await server.raw("POST", "/v1/actions", { agent_id: "agent-retry-approve", tool: "shell", operation: "run", params: { cmd: "true" } })
  ).body;
  const proxy = await dropFirstAnswerProxy(server.port, `POST /v1/actions/${pending.id}/approval `);
  try {
    const client = new ExecutionGovernorClient({ baseUrl: proxy.url, retryBackoffFactor: 0.001 });
    const approved = await client.approveAction(pending.id, pending.approval_token, "ok");
    assert.equal(proxy.dropped, true);
    assert.equal(approved.status, "approved");
    const approvals = proxy.requests.filter((r) => r.path.endsWith("/approval"));
    assert.equal(approvals.length, 2);
    const events = (await server.raw("GET", `/v1/actions/${pending.id}/events`)).body;
    assert.equal(events.filter((e) => e.event_type === "approved").length, 1);
  } finally {
    await proxy.close();
  }
});

test("a conflict on the first attempt is not mistaken for a lost success", async () => {
  const pending = (
    await server.raw("POST", "/v1/actions", { agent_id: "agent-retry-approve", tool: "shell", operation: "run", params: { cmd: "true" } })
  ).body;
  await server.raw("POST", `/v1/actions/${pending.id}/approval`, { token: pending.approval_token, approve: true });
  const client = new ExecutionGovernorClient({ baseUrl: server.url, retryBackoffFactor: 0.001 });
  const error = await client.approveAction(pending.id, pending.approval_token).catch((e) => e);
  assert.ok(error instanceof FarameshConflictError);
  assert.equal(error.attempts, 1);
});
