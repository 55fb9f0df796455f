// Typed errors from the right statuses: the real server for 404, 409 and 422; small local
// servers for 403, 5xx, hangs and odd bodies; a closed port for connection errors.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import helpers from "./helpers/server.cjs";
import {
  ExecutionGovernorClient,
  FarameshAuthError,
  FarameshConflictError,
  FarameshConnectionError,
  FarameshError,
  FarameshForbiddenError,
  FarameshNotFoundError,
  FarameshServerError,
  FarameshTimeoutError,
  FarameshValidationError,
} from "@faramesh/sdk";

const { FarameshServer, freePort, mockServer } = helpers;

let server;
let client;
const fast = { retryBackoffFactor: 0.001, maxRetries: 2 };

before(async () => {
  server = await FarameshServer.start();
  client = new ExecutionGovernorClient({ baseUrl: server.url, agentId: "agent-errors", ...fast });
});

after(async () => {
  await server?.dispose();
});

async function caught(promise) {
  return promise.then(
    (value) => assert.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (error) => error,
  );
}

describe("from the real server", () => {
  test("404: an unknown action is FarameshNotFoundError with the server's detail", async () => {
    for (const call of [
      () => client.getAction("00000000-0000-0000-0000-000000000000"),
      () => client.getEvents("no-such-action"),
      () => client.startAction("no-such-action"),
      () => client.reportResult("no-such-action", { success: true }),
      () => client.approveAction("no-such-action", "some-token"),
    ]) {
      const error = await caught(call());
      assert.ok(error instanceof FarameshNotFoundError, error.stack);
      assert.ok(error instanceof FarameshError);
      assert.equal(error.status, 404);
      assert.equal(error.statusCode, 404);
      assert.equal(error.code, "not_found");
      assert.match(error.detail, /not found/i);
      assert.equal(error.attempts, 1, "4xx is not retried");
    }
  });

  test("409: deciding a decided action, starting a pending one, reporting twice", async () => {
    const pending = await client.submitAction("shell", "run", { cmd: "true" });
    await client.approveAction(pending.id, pending.approval_token);

    const again = await caught(client.denyAction(pending.id, pending.approval_token));
    assert.ok(again instanceof FarameshConflictError);
    assert.equal(again.status, 409);
    assert.equal(again.currentStatus, "approved");
    assert.equal(again.actionId, pending.id);
    assert.match(again.detail, /approved/);

    // Without a token the SDK looks at the action first and refuses the same way.
    const local = await caught(client.approveAction(pending.id));
    assert.ok(local instanceof FarameshConflictError);
    assert.equal(local.currentStatus, "approved");

    const waiting = await client.submitAction("shell", "run", { cmd: "true" });
    const start = await caught(client.startAction(waiting.id));
    assert.ok(start instanceof FarameshConflictError);
    assert.equal(start.currentStatus, "pending_approval");

    const allowed = await client.submitAction("http", "get", { url: "https://example.com" });
    await client.reportResult(allowed.id, { success: true });
    const twice = await caught(client.reportResult(allowed.id, { success: false, error: "late" }));
    assert.ok(twice instanceof FarameshConflictError);
    assert.equal(twice.currentStatus, "succeeded");
  });

  test("409: an Idempotency-Key reused with a different body", async () => {
    const key = `reuse-${Date.now()}`;
    await client.submitAction({ tool: "http", operation: "get", params: { url: "a" }, idempotencyKey: key });
    const error = await caught(client.submitAction({ tool: "http", operation: "get", params: { url: "b" }, idempotencyKey: key }));
    assert.ok(error instanceof FarameshConflictError);
    assert.equal(error.currentStatus, "idempotency_key_reused");
  });

  test("422: invalid submissions and filters are FarameshValidationError naming the field", async () => {
    const empty = await caught(client.submitAction("", "get", {}));
    assert.ok(empty instanceof FarameshValidationError);
    assert.equal(empty.status, 422);
    assert.match(empty.detail, /tool/);

    const params = await caught(client.submitAction({ tool: "http", operation: "get", params: [1, 2] }));
    assert.ok(params instanceof FarameshValidationError);
    assert.match(params.detail, /params/);

    const decide = await caught(client.gateDecide({ tool: "http", operation: " " }));
    assert.ok(decide instanceof FarameshValidationError);
    assert.match(decide.detail, /operation/);

    const filter = await caught(client.listActions({ status: "sideways" }));
    assert.ok(filter instanceof FarameshValidationError);
    assert.match(filter.detail, /status/);
  });
});

describe("from local servers", () => {
  test("5xx is retried with backoff, then FarameshServerError with the detail", async () => {
    const mock = await mockServer(() => ({ status: 500, body: { detail: "boom: the store exploded" } }));
    try {
      const c = new ExecutionGovernorClient({ baseUrl: mock.url, ...fast, maxRetries: 3 });
      const error = await caught(c.getAction("x"));
      assert.ok(error instanceof FarameshServerError);
      assert.equal(error.status, 500);
      assert.equal(error.detail, "boom: the store exploded");
      assert.equal(error.attempts, 4);
      assert.equal(mock.requests.length, 4, "one try and three retries");
    } finally {
      await mock.close();
    }
  });

  test("a retry after a 503 succeeds, and a submission keeps its Idempotency-Key", async () => {
    const action = { id: "a1", status: "allowed", agent_id: "x", tool: "http", operation: "get" };
    const mock = await mockServer((req, body, res, n) =>
      n === 1 ? { status: 503, body: { detail: "database busy" } } : { status: 200, body: action },
    );
    try {
      const c = new ExecutionGovernorClient({ baseUrl: mock.url, ...fast });
      const result = await c.submitAction("http", "get", {});
      assert.equal(result.id, "a1");
      assert.equal(mock.requests.length, 2);
      const [first, second] = mock.requests;
      assert.ok(first.headers["idempotency-key"]);
      assert.equal(second.headers["idempotency-key"], first.headers["idempotency-key"]);
      assert.equal(second.body, first.body);
    } finally {
      await mock.close();
    }
  });

  test("403 is FarameshForbiddenError, a kind of FarameshAuthError", async () => {
    const mock = await mockServer(() => ({
      status: 403,
      body: { detail: "Token \"bot\" has the agent role, which may not approve or deny actions", code: "forbidden" },
    }));
    try {
      const c = new ExecutionGovernorClient({ baseUrl: mock.url, ...fast });
      const error = await caught(c.approveAction("x", "token"));
      assert.ok(error instanceof FarameshForbiddenError);
      assert.ok(error instanceof FarameshAuthError);
      assert.equal(error.status, 403);
      assert.equal(error.code, "forbidden");
      assert.match(error.detail, /agent role/);
      assert.equal(mock.requests.length, 1);
    } finally {
      await mock.close();
    }
  });

  test("error bodies that are not JSON still give a status and a detail", async () => {
    const mock = await mockServer(() => ({ status: 502, body: "<html>Bad Gateway</html>", headers: { "content-type": "text/html" } }));
    try {
      const c = new ExecutionGovernorClient({ baseUrl: mock.url, ...fast, maxRetries: 0 });
      const error = await caught(c.listActions());
      assert.ok(error instanceof FarameshServerError);
      assert.equal(error.status, 502);
      assert.equal(error.detail, "<html>Bad Gateway</html>");
    } finally {
      await mock.close();
    }
  });

  test("a server that does not answer in time gives FarameshTimeoutError after the retries", async () => {
    const mock = await mockServer(() => undefined); // never answers
    try {
      const c = new ExecutionGovernorClient({ baseUrl: mock.url, ...fast, maxRetries: 1, timeoutMs: 100 });
      const error = await caught(c.getAction("x"));
      assert.ok(error instanceof FarameshTimeoutError);
      assert.equal(error.attempts, 2);
      assert.equal(mock.requests.length, 2);
    } finally {
      await mock.close();
    }
  });

  test("a refused connection gives FarameshConnectionError naming the URL, after the retries", async () => {
    const port = await freePort();
    const errors = [];
    const c = new ExecutionGovernorClient({
      baseUrl: `http://127.0.0.1:${port}`,
      ...fast,
      onError: (e) => errors.push(e),
    });
    const error = await caught(c.listActions());
    assert.ok(error instanceof FarameshConnectionError);
    assert.equal(error.status, undefined);
    assert.equal(error.code, "ECONNREFUSED");
    assert.equal(error.attempts, 3);
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.equal(errors.length, 3, "onError hears of every failed attempt");
  });

  test("request hooks see each call once with its final status", async () => {
    const seen = [];
    const c = new ExecutionGovernorClient({
      baseUrl: server.url,
      onRequestStart: (method, url) => seen.push(["start", method, new URL(url).pathname]),
      onRequestEnd: (method, url, status) => seen.push(["end", method, new URL(url).pathname, status]),
    });
    await c.getAction("missing").catch(() => {});
    assert.deepEqual(seen, [
      ["start", "GET", "/v1/actions/missing"],
      ["end", "GET", "/v1/actions/missing", 404],
    ]);
  });
});
