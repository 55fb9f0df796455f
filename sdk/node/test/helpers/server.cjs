"use strict";
// Test helpers: a real Faramesh server per test file, small local HTTP and TCP servers, and
// condition waits with deadlines (never fixed sleeps).

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..", "..");
const POLICY = path.join(REPO_ROOT, "policies", "default.yaml");
const ADMIN_TOKEN = "secret";

function binary() {
  const bin = process.env.FARAMESH_BIN;
  if (!bin) throw new Error("FARAMESH_BIN must name the faramesh server binary (run-tests sets it)");
  return bin;
}

/** A TCP port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a truthy value, failing after `timeoutMs`. */
async function waitFor(check, { timeoutMs = 20_000, intervalMs = 20, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A promise with its resolve and reject exposed. */
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Rejects when `promise` has not settled within `ms` (a deadline, not a timing assertion). */
function within(promise, ms, what = "operation") {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Environment for the server: the caller's, without any Faramesh settings. */
function serverEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("FARAMESH_") && !k.startsWith("FARA_")) env[k] = v;
  }
  return { ...env, ...extra };
}

class FarameshServer {
  constructor({ port, dir, token, env, policy }) {
    this.port = port;
    this.policy = policy ?? POLICY;
    this.dir = dir;
    this.token = token;
    this.extraEnv = env ?? {};
    this.url = `http://127.0.0.1:${port}`;
    this.proc = undefined;
    this.log = "";
  }

  /**
   * Starts a server on a free port with a fresh database; `token` turns authentication on,
   * `policy` names another policy file than policies/default.yaml.
   */
  static async start({ token, env, policy } = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "faramesh-node-sdk-"));
    const server = new FarameshServer({ port: await freePort(), dir, token, env, policy });
    await server.launch();
    return server;
  }

  get dbPath() {
    return path.join(this.dir, "actions.db");
  }

  async launch() {
    const args = [
      "serve",
      "--host", "127.0.0.1",
      "--port", String(this.port),
      "--policy", this.policy,
      "--db", this.dbPath,
      "--profile", path.join(this.dir, "none.yaml"),
    ];
    const env = serverEnv({ ...this.extraEnv, ...(this.token ? { FARAMESH_TOKEN: this.token } : {}) });
    const proc = spawn(binary(), args, { cwd: this.dir, env, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
    proc.exited = exited;
    proc.stdout.on("data", (d) => (this.log += d));
    proc.stderr.on("data", (d) => (this.log += d));
    let gone;
    exited.then((status) => (gone = status));
    await waitFor(
      async () => {
        if (gone) throw new Error(`faramesh serve exited early (${JSON.stringify(gone)}):\n${this.log}`);
        try {
          const res = await fetch(`${this.url}/ready`);
          await res.arrayBuffer();
          return res.status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, intervalMs: 25, what: `the server at ${this.url} to be ready` },
    );
  }

  /** Stops the server (SIGTERM, then SIGKILL past a deadline) and waits for it to exit. */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    await proc.exited;
    clearTimeout(timer);
  }

  /** Stops and starts again on the same port and database. */
  async restart() {
    await this.stop();
    await this.launch();
  }

  /** Stops the server and removes its files. */
  async dispose() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Raw JSON request to the server (admin token when auth is on), bypassing the SDK. */
  async raw(method, p, body, token = this.token) {
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(this.url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, body: json, text };
  }
}

/**
 * A local HTTP server answering every request with `handler(req, body)` → {status, body, headers}
 * (or handling `res` itself when the handler returns undefined). Records requests.
 */
async function mockServer(handler) {
  const requests = [];
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString("utf8");
    requests.push({ method: req.method, url: req.url, headers: req.headers, body });
    const answer = await handler(req, body, res, requests.length);
    if (answer === undefined) return;
    res.writeHead(answer.status, { "content-type": "application/json", ...(answer.headers ?? {}) });
    res.end(typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body));
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A TCP proxy to `targetPort`. The first request whose head contains `match` is forwarded to
 * the server, but when the server's answer arrives the client's connection is destroyed
 * instead: the server did the work, the client never hears of it. Later requests pass through.
 * `requests` records every request head seen (method, path, idempotency key).
 */
async function dropFirstAnswerProxy(targetPort, match) {
  const requests = [];
  const sockets = new Set();
  let dropped = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    let drop = false;
    client.on("data", (chunk) => {
      const text = chunk.toString("latin1");
      const head = /^(GET|POST|DELETE|PUT) (\S+) HTTP\/1\.1/m.exec(text);
      if (head) {
        const key = /^idempotency-key:\s*(.+?)\r?$/im.exec(text);
        requests.push({ method: head[1], path: head[2], idempotencyKey: key ? key[1] : undefined });
        if (!dropped && text.includes(match)) {
          dropped = true;
          drop = true;
        }
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (drop) {
        client.destroy();
        upstream.destroy();
      } else {
        client.write(chunk);
      }
    });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", closeBoth);
    upstream.on("error", closeBoth);
    client.on("close", closeBoth);
    upstream.on("close", closeBoth);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    get dropped() {
      return dropped;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Collects an async iterable's items in the background; `waitForCount(n)` resolves at n items. */
function collect(iterable) {
  const items = [];
  const waiters = [];
  let error;
  let finished = false;
  const done = (async () => {
    try {
      for await (const item of iterable) {
        items.push(item);
        for (const w of [...waiters]) {
          if (items.length >= w.n) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(items.slice());
          }
        }
      }
    } catch (e) {
      error = e;
      for (const w of waiters.splice(0)) w.reject(e);
    } finally {
      finished = true;
      for (const w of waiters.splice(0)) w.reject(new Error(`stream ended after ${items.length} items`));
    }
  })();
  return {
    items,
    done,
    /** Closes the iterable (when it can be closed) and waits for the collection to end. */
    async stop() {
      iterable.close?.();
      await done;
    },
    get error() {
      return error;
    },
    waitForCount(n, ms = 20_000) {
      if (items.length >= n) return Promise.resolve(items.slice());
      if (error) return Promise.reject(error);
      if (finished) return Promise.reject(new Error(`stream ended after ${items.length} items`));
      const d = deferred();
      waiters.push({ n, resolve: d.resolve, reject: d.reject });
      return within(d.promise, ms, `${n} stream items (have ${items.length})`);
    },
  };
}

module.exports = {
  ADMIN_TOKEN,
  POLICY,
  REPO_ROOT,
  FarameshServer,
  collect,
  deferred,
  dropFirstAnswerProxy,
  freePort,
  mockServer,
  waitFor,
  within,
};
