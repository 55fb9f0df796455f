// Test harness: a real `faramesh serve` on a free port with its own database, and headless
// Chromium driven by playwright-core.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repo = process.env.FARAMESH_REPO ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
// Servers run in a temporary directory, so a relative FARAMESH_BIN is resolved first.
const bin = process.env.FARAMESH_BIN ? resolve(process.env.FARAMESH_BIN) : join(repo, 'target/debug/faramesh');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts a server. `env` is added to a clean environment (no inherited FARAMESH_* or FARA_*
 * settings); `demo` seeds demo actions. The server runs in a temporary directory so no
 * `.env` file of the developer's applies. `files` ({name: text}) are written into that
 * directory first (a `notify.yaml` there is the server's routes file); `policy` is the policy
 * file, relative to that directory (default: the repository's policies/default.yaml);
 * `profile` the execution profile, likewise (default: none, a file that does not exist).
 */
export async function startServer({ env = {}, demo = false, files = {}, policy = null, profile = null } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'faramesh-ui-test-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const policyFile = policy ? resolve(dir, policy) : join(repo, 'policies/default.yaml');
  const profileFile = profile ? resolve(dir, profile) : join(dir, 'none.yaml');
  const port = await freePort();
  const server = {
    dir,
    port,
    url: `http://127.0.0.1:${port}`,
    token: env.FARAMESH_TOKEN ?? null,
    child: null,
    output: '',
    async start() {
      const args = ['serve', '--host', '127.0.0.1', '--port', String(port), '--db', join(dir, 'a.db'),
        '--policy', policyFile, '--profile', profileFile];
      if (demo) args.push('--demo');
      const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^FARA(MESH)?_/.test(k)));
      // Checkpoints five times a second, so a new action is proved in the log at once.
      const quick = { FARAMESH_CHECKPOINT_EVERY: '0.2' };
      const child = spawn(bin, args, { cwd: dir, env: { ...cleanEnv, ...quick, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      // Never leave a server behind, even when a test file crashes.
      const reap = () => child.kill('SIGKILL');
      process.once('exit', reap);
      child.once('exit', () => process.off('exit', reap));
      child.stdout.on('data', (d) => { this.output += d; });
      child.stderr.on('data', (d) => { this.output += d; });
      let exited = null;
      child.once('exit', (code, signal) => { exited = { code, signal }; });
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (exited) throw new Error(`faramesh serve exited (${JSON.stringify(exited)}):\n${this.output}`);
        try {
          const res = await fetch(`${this.url}/ready`);
          if (res.status === 200) return;
        } catch { /* not listening yet */ }
        if (Date.now() > deadline) throw new Error(`faramesh serve not ready within 60 s:\n${this.output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      const child = this.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      this.child = null;
    },
    async close() {
      await this.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    /** A JSON API call; returns { status, body }. */
    async api(method, path, body, { token = this.token } = {}) {
      const headers = { Accept: 'application/json' };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (token) headers.Authorization = `Bearer ${token}`;
      const res = await fetch(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    /** Submits an action and returns it (asserting 200). */
    async submit(action) {
      const { status, body } = await this.api('POST', '/v1/actions', { context: {}, ...action });
      if (status !== 200) throw new Error(`submit failed: ${status} ${JSON.stringify(body)}`);
      return body;
    },
  };
  await server.start();
  return server;
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: chromiumPath });
}

/**
 * A new page that records page errors, console errors and dialogs (a dialog would mean
 * injected script ran; it is dismissed and recorded).
 */
export async function newPage(browser, { width = 1280, height = 800, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const record = { errors: [], dialogs: [], requests: [] };
  page.on('pageerror', (e) => record.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') record.errors.push(`console: ${m.text()}`); });
  page.on('dialog', (d) => { record.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('request', (r) => record.requests.push(r.url()));
  return { context, page, record };
}

/** Polls `fn` until it returns without throwing, up to `timeout` ms; rethrows the last error. */
export async function eventually(fn, { timeout = 15_000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, interval));
    }
  }
}

/** A unique marker to find one test's action among others. */
export function marker(prefix = 'm') {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The table row of the action whose params contain `text`. */
export function row(page, text) {
  return page.locator('#actions-body tr').filter({ hasText: text });
}

/** Waits until `locator` has exactly the text `text` (trimmed). */
export async function waitForText(locator, text) {
  await locator.filter({ hasText: new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) }).waitFor();
}
