// Authentication and roles against a server started with FARAMESH_TOKEN=secret.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import helpers from "./helpers/server.cjs";
import {
  ExecutionGovernorClient,
  FarameshAuthError,
  FarameshForbiddenError,
} from "@faramesh/sdk";

const { ADMIN_TOKEN, FarameshServer } = helpers;

let server;

before(async () => {
  server = await FarameshServer.start({ token: ADMIN_TOKEN });
});

after(async () => {
  await server?.dispose();
});

describe("authentication", () => {
  test("without a token every API call is FarameshAuthError (401), never retried", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: server.url, token: "" });
    for (const call of [
      () => client.submitAction("http", "get", {}),
      () => client.listActions(),
      () => client.getAction("x"),
      () => client.gateDecide("http", "get", {}),
    ]) {
      const error = await call().catch((e) => e);
      assert.ok(error instanceof FarameshAuthError, String(error));
      assert.ok(!(error instanceof FarameshForbiddenError));
      assert.equal(error.status, 401);
      assert.equal(error.code, "unauthorized");
      assert.match(error.detail, /bearer token/i);
      assert.equal(error.attempts, 1);
    }
  });

  test("a wrong token is 401 too, and fail-open does not turn it into an allow", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: server.url, token: "not-the-secret", failOpen: true });
    const error = await client.submitAction("http", "get", {}).catch((e) => e);
    assert.ok(error instanceof FarameshAuthError);
    assert.match(error.detail, /invalid/i);
  });

  test("the live stream without a valid token ends at once with FarameshAuthError", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: server.url, token: "wrong" });
    const stream = client.eventStream({ reconnectDelayMs: 5 });
    await assert.rejects(
      (async () => {
        for await (const _ of stream) assert.fail("no message expected");
      })(),
      (e) => e instanceof FarameshAuthError && e.status === 401,
    );
    assert.equal(stream.closed, true);
  });

  test("the token from the environment (FARAMESH_TOKEN) is sent as a bearer token", async () => {
    const saved = process.env.FARAMESH_TOKEN;
    process.env.FARAMESH_TOKEN = ADMIN_TOKEN;
    try {
      const client = new ExecutionGovernorClient({ baseUrl: server.url, agentId: "agent-auth" });
      const pending = await client.submitAction("shell", "run", { cmd: "true" });
      assert.equal(pending.status, "pending_approval");
      assert.ok(pending.approval_token, "an admin sees the approval token");
      assert.equal((await client.approveAction(pending.id)).status, "approved");
    } finally {
      if (saved === undefined) delete process.env.FARAMESH_TOKEN;
      else process.env.FARAMESH_TOKEN = saved;
    }
  });
});

describe("roles", () => {
  test("an agent token never sees approval_token and approving with it is FarameshForbiddenError (403)", async (t) => {
    const created = await server.raw("POST", "/v1/tokens", { name: "sdk-agent", role: "agent" });
    if (created.status === 404) {
      t.skip("this server build has no API tokens (POST /v1/tokens is 404), so no agent-role token can be made");
      return;
    }
    assert.ok([200, 201].includes(created.status), created.text);
    const secret = created.body.token ?? created.body.secret;
    assert.ok(secret, `the new token's secret is returned: ${created.text}`);

    const agent = new ExecutionGovernorClient({ baseUrl: server.url, token: secret, agentId: "agent-role" });
    const pending = await agent.submitAction("shell", "run", { cmd: "true" });
    assert.equal(pending.status, "pending_approval");
    assert.equal(pending.approval_token, null);
    assert.equal((await agent.getAction(pending.id)).approval_token, null);

    const error = await agent.approveAction(pending.id).catch((e) => e);
    assert.ok(error instanceof FarameshForbiddenError, String(error));
    assert.ok(error instanceof FarameshAuthError);
    assert.equal(error.status, 403);
    assert.match(error.detail, /agent role/);

    const admin = new ExecutionGovernorClient({ baseUrl: server.url, token: ADMIN_TOKEN });
    assert.equal((await admin.approveAction(pending.id)).status, "approved");
  });
});
