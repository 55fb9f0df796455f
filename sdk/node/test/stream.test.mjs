// The live stream: parsing, live delivery, callbacks, and resuming with Last-Event-ID after the
// server restarts on the same database and port.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import helpers from "./helpers/server.cjs";
import {
  EventStream,
  ExecutionGovernorClient,
  FarameshConnectionError,
  SseParser,
  configure,
  eventStream,
  onEvents,
  streamEvents,
  tailEvents,
} from "@faramesh/sdk";

const { FarameshServer, collect, deferred, mockServer, waitFor, within } = helpers;

let server;

before(async () => {
  server = await FarameshServer.start();
  configure({ baseUrl: server.url, retryBackoffFactor: 0.001 });
});

after(async () => {
  await server?.dispose();
});

/** Submits an allowed action for `agent` and drives it to succeeded: three stream messages. */
async function threeEvents(client, agent) {
  const action = await client.submitAction({ agentId: agent, tool: "http", operation: "get", params: { url: "https://example.com" } });
  await client.startAction(action.id);
  await client.reportResult(action.id, { success: true });
  return action;
}

describe("SseParser", () => {
  test("parses fields, comments, multi-line data and every line ending, across chunk borders", () => {
    const parser = new SseParser();
    const text = ": ping\r\nid: 7\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nevent: other\ndata: x\n\nretry: 250\nid: 9\n\ndata: after\r\rid: bad\0id\ndata: z\n\n";
    const messages = [];
    for (const ch of text) messages.push(...parser.feed(ch)); // one character at a time
    assert.deepEqual(messages, [
      { id: "7", event: "message", data: "{\"a\":\n1}" },
      { id: "7", event: "other", data: "x" },
      { id: "9", event: "message", data: undefined },
      { id: "9", event: "message", data: "after" },
      { id: "9", event: "message", data: "z" },
    ]);
    assert.equal(parser.retry, 250);
    assert.equal(parser.lastEventId, "9", "an id containing NUL is ignored");
  });

  test("strips a leading byte-order mark and keeps a trailing CR for the next chunk", () => {
    const parser = new SseParser();
    assert.deepEqual(parser.feed("\ufeffdata: a\r"), []);
    assert.deepEqual(parser.feed("\n\r\n"), [{ id: undefined, event: "message", data: "a" }]);
  });
});

describe("live events", () => {
  test("eventStream delivers live messages in order with increasing ids", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: server.url });
    const opened = deferred();
    const stream = eventStream({ agentId: "agent-live", onOpen: opened.resolve });
    assert.ok(stream instanceof EventStream);
    const seen = collect(stream);
    await within(opened.promise, 20_000, "the stream to open");
    const action = await threeEvents(client, "agent-live");
    const events = await seen.waitForCount(3);
    await seen.stop();
    assert.deepEqual(events.map((e) => [e.type, e.data.status]), [
      ["action.created", "allowed"],
      ["action.updated", "executing"],
      ["action.updated", "succeeded"],
    ]);
    for (const e of events) {
      assert.equal(e.action_id, action.id);
      assert.equal(e.event_type, e.type);
      assert.equal(e.data.agent_id, "agent-live");
      assert.match(e.timestamp, /Z$/);
    }
    const ids = events.map((e) => Number(e.id));
    assert.ok(ids[0] < ids[1] && ids[1] < ids[2], `ids increase: ${ids}`);
    assert.equal(stream.lastEventId, events[2].id);
    assert.equal(seen.error, undefined);
  });

  test("filters: by action, by status and by message type", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: server.url });
    const action = await threeEvents(client, "agent-filter");
    // Replay from before this action: everything after the given id is delivered first.
    const byAction = collect(client.eventStream({ actionId: action.id, lastEventId: 0 }));
    assert.deepEqual((await byAction.waitForCount(3)).map((e) => e.data.status), ["allowed", "executing", "succeeded"]);
    const updates = collect(client.eventStream({ actionId: action.id, lastEventId: 0, eventTypes: ["action.updated"] }));
    assert.deepEqual((await updates.waitForCount(2)).map((e) => e.type), ["action.updated", "action.updated"]);
    const succeeded = collect(client.eventStream({ agentId: "agent-filter", status: "succeeded", lastEventId: 0 }));
    assert.deepEqual((await succeeded.waitForCount(1)).map((e) => e.action_id), [action.id]);
    await Promise.all([byAction.stop(), updates.stop(), succeeded.stop()]);
  });

  test("resuming from a lastEventId delivers exactly the later messages", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: server.url });
    const first = await threeEvents(client, "agent-resume");
    const all = collect(client.eventStream({ agentId: "agent-resume", lastEventId: 0 }));
    const firstThree = await all.waitForCount(3);
    const second = await threeEvents(client, "agent-resume");
    const everything = await all.waitForCount(6);
    const resumed = collect(client.eventStream({ agentId: "agent-resume", lastEventId: firstThree[2].id }));
    const later = await resumed.waitForCount(3);
    await Promise.all([all.stop(), resumed.stop()]);
    assert.deepEqual(later.map((e) => e.id), everything.slice(3).map((e) => e.id));
    assert.ok(later.every((e) => e.action_id === second.id));
    assert.ok(firstThree.every((e) => e.action_id === first.id));
  });

  test("onEvents, streamEvents (stopAfter) and tailEvents (the functional API)", async () => {
    const client = new ExecutionGovernorClient({ baseUrl: server.url });
    const viaOn = [];
    const threeSeen = deferred();
    const opened = deferred();
    const close = onEvents(
      (e) => {
        viaOn.push(e);
        if (viaOn.length === 3) threeSeen.resolve();
      },
      { agentId: "agent-callbacks", onOpen: opened.resolve },
    );
    const viaStream = [];
    const twoSeen = deferred();
    streamEvents(
      (e) => {
        viaStream.push(e);
        if (viaStream.length === 2) twoSeen.resolve();
      },
      { agentId: "agent-callbacks", stopAfter: 2, lastEventId: 0 },
    );
    const viaTail = [];
    const tail = tailEvents((e) => viaTail.push(e), { agentId: "agent-callbacks", stopAfter: 3, lastEventId: 0 });

    await within(opened.promise, 20_000, "onEvents to connect");
    await threeEvents(client, "agent-callbacks");
    await within(threeSeen.promise, 20_000, "onEvents to see three messages");
    await within(twoSeen.promise, 20_000, "streamEvents to see two messages");
    await within(tail, 20_000, "tailEvents to stop after three messages");
    close();
    assert.equal(viaOn.length, 3);
    assert.equal(viaTail.length, 3);
    assert.deepEqual(viaStream.map((e) => e.id), viaOn.slice(0, 2).map((e) => e.id));
    assert.equal(viaStream.length, 2, "stopAfter closed the stream");
  });

  test("a stream without reconnection ends with a typed error when the connection fails", async () => {
    const mock = await mockServer((req, body, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      // One message, then the connection breaks (once the message has left for the client).
      res.write("id: 1\ndata: {\"type\":\"action.created\",\"action_id\":\"a\",\"data\":{\"id\":\"a\"},\"timestamp\":\"t\"}\n\n", () =>
        res.socket.destroy(),
      );
    });
    try {
      const mockStream = new ExecutionGovernorClient({ baseUrl: mock.url }).eventStream({ reconnect: false });
      const got = collect(mockStream);
      await assert.rejects(got.done.then(() => { if (got.error) throw got.error; }), FarameshConnectionError);
      assert.equal(got.items.length, 1);
      assert.equal(got.items[0].id, "1");
    } finally {
      await mock.close();
    }
  });
});

describe("restart", () => {
  test("after a server restart on the same database and port, the stream resumes with Last-Event-ID: nothing lost, nothing repeated", async () => {
    const agent = "agent-restart";
    let hold; // while set, new stream connections wait for it
    let inFlight = 0;
    const lastEventIds = [];
    const gatedFetch = async (url, init) => {
      if (String(url).includes("/v1/events")) {
        if (hold) await hold.promise;
        lastEventIds.push(init.headers["last-event-id"]);
      }
      inFlight++;
      try {
        return await fetch(url, init);
      } finally {
        inFlight--;
      }
    };
    const watcher = new ExecutionGovernorClient({ baseUrl: server.url, fetch: gatedFetch });
    const submitter = new ExecutionGovernorClient({ baseUrl: server.url, retryBackoffFactor: 0.001 });

    const opens = [];
    let disconnects = 0;
    const firstOpen = deferred();
    const reopened = deferred();
    const stream = watcher.eventStream({
      agentId: agent,
      reconnectDelayMs: 5,
      maxReconnectDelayMs: 50,
      onOpen: (info) => {
        opens.push(info);
        (opens.length === 1 ? firstOpen : reopened).resolve(info);
      },
      onDisconnect: () => disconnects++,
    });
    const seen = collect(stream);
    await within(firstOpen.promise, 20_000, "the stream to open");

    const a = await threeEvents(submitter, agent);
    const beforeRestart = await seen.waitForCount(3);

    // Down: the stream keeps trying (connection refused) with backoff.
    await server.stop();
    await waitFor(() => disconnects >= 3, { what: "reconnection attempts while the server is down" });
    // Hold further reconnections, and let any attempt already under way fail first.
    hold = deferred();
    await waitFor(() => inFlight === 0, { what: "in-flight attempts to finish" });

    // Up again on the same port and database; these messages happen while the client is away.
    await server.restart();
    const b = await threeEvents(submitter, agent);
    assert.equal(seen.items.length, 3, "nothing can arrive while reconnection is held");

    hold.resolve();
    const info = await within(reopened.promise, 20_000, "the stream to reconnect");
    assert.equal(info.reconnect, true);
    assert.equal(info.lastEventId, beforeRestart[2].id);
    assert.equal(lastEventIds.at(-1), beforeRestart[2].id, "Last-Event-ID was sent");
    const afterResume = await seen.waitForCount(6);

    // And live again afterwards.
    const c = await submitter.submitAction({ agentId: agent, tool: "http", operation: "get", params: {} });
    const all = await seen.waitForCount(7);
    await seen.stop();

    assert.deepEqual(
      all.map((e) => [e.action_id, e.data.status]),
      [
        [a.id, "allowed"], [a.id, "executing"], [a.id, "succeeded"],
        [b.id, "allowed"], [b.id, "executing"], [b.id, "succeeded"],
        [c.id, "allowed"],
      ],
    );
    const ids = all.map((e) => Number(e.id));
    assert.equal(new Set(ids).size, ids.length, "no message delivered twice");
    assert.deepEqual([...ids].sort((x, y) => x - y), ids, "ids keep increasing across the restart");
    assert.equal(afterResume.length, 6);
    assert.equal(seen.error, undefined);
  });
});
