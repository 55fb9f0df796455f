// The Health view: the ledger chain of each of the most recent actions (one rewritten behind
// the server's back shows as broken, with the server's words), and notification delivery
// health (no routes; failed deliveries with their last error).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, launchBrowser, marker, newPage, startServer, waitForText } from './lib/harness.mjs';

// Port 9 refuses connections: the delivery of an approval request keeps its error.
const ROUTES = `routes:
  ops:
    webhook: {url: "http://127.0.0.1:9/hook", secret: "s3cret-for-test"}
`;

/** Runs a Python/sqlite3 statement against a stopped server's database. */
function sql(server, statement, ...args) {
  const script = 'import sqlite3, sys\n'
    + 'db = sqlite3.connect(sys.argv[1])\n'
    + 'db.execute(sys.argv[2], tuple(sys.argv[3:]))\n'
    + 'db.commit()\n';
  execFileSync('python3', ['-c', script, join(server.dir, 'a.db'), statement, ...args]);
}

describe('health view', { timeout: 180_000 }, () => {
  let browser;
  const servers = [];

  before(async () => { browser = await launchBrowser(); });
  after(async () => {
    await browser?.close();
    for (const s of servers) await s.close();
  });

  async function openHealth(server) {
    const handle = await newPage(browser);
    await handle.page.goto(server.url);
    await handle.page.locator('html[data-ready="true"]').waitFor();
    await handle.page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Health' }).click();
    await handle.page.getByRole('heading', { name: 'Health', level: 1 }).waitFor();
    return handle;
  }

  it('shows the chain of each recent action, one broken with its problem, and says no routes are configured', async () => {
    const server = await startServer();
    servers.push(server);
    const m = marker('health');
    const good = await server.submit({ agent_id: 'health', tool: 'http', operation: 'get', params: { url: `https://example.com/${m}` } });
    const bad = await server.submit({ agent_id: 'health', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}` } });
    await server.stop();
    sql(server, 'UPDATE actions SET params = ? WHERE id = ?', JSON.stringify({ cmd: `rm -rf / ${m}` }), bad.id);
    await server.start();
    const problem = (await server.api('GET', `/v1/actions/${bad.id}/chain`)).body.problem;
    assert.ok(problem);

    const { page, context, record } = await openHealth(server);
    assert.equal(new URL(page.url()).hash, '#/health');
    // The signed log's latest checkpoint, its signature checked in the browser.
    await page.getByText(/✓ Last checkpoint: \d+ events?, signed by \S+; signature verified\./).waitFor();
    const chains = page.getByRole('list', { name: 'Chain verification of the most recent actions' });
    const item = (id) => chains.getByRole('listitem').filter({ has: page.getByRole('button', { name: `Details of action ${id.slice(0, 8)}` }) });
    await item(bad.id).getByText('✗ broken').waitFor();
    await item(bad.id).getByText(problem).waitFor();
    await item(good.id).getByText('✓ verified').waitFor();
    assert.equal(await chains.getByRole('listitem').count(), 2);
    await waitForText(page.locator('#health-chain-summary'), '✗ 1 of the 2 most recent actions do not verify.');
    await page.getByText('No notification routes are configured', { exact: false }).waitFor();
    await waitForText(page.getByRole('list', { name: 'Delivery counts' }).getByRole('listitem').first(), '0 failed');
    await page.getByText('No failed deliveries.').waitFor();

    // The broken action opens from there, and its drawer says the same.
    await item(bad.id).getByRole('button').click();
    const drawer = page.getByRole('dialog', { name: 'shell · run' });
    await drawer.getByText('✗ action does not match its ledger').waitFor();
    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#view-health').isVisible(), true);
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('counts failed and pending deliveries and lists the latest failures with their last error', async () => {
    const server = await startServer({ files: { 'notify.yaml': ROUTES } });
    servers.push(server);
    const m = marker('failing');
    const action = await server.submit({ agent_id: 'health', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}` } });
    await eventually(async () => {
      const { body } = await server.api('GET', `/v1/notifications?action_id=${action.id}`);
      assert.equal(body.length, 1);
      assert.match(body[0].last_error ?? '', /cannot reach the webhook receiver/);
    }, { timeout: 30_000 });
    // Retries last 24 hours; the database says it gave up.
    await server.stop();
    sql(server, "UPDATE notifications SET state = 'failed' WHERE action_id = ?", action.id);
    await server.start();
    await server.submit({ agent_id: 'health', tool: 'shell', operation: 'run', params: { cmd: `echo second ${m}` } });

    const { page, context, record } = await openHealth(server);
    const counts = page.getByRole('list', { name: 'Delivery counts' });
    await waitForText(counts.getByRole('listitem').first(), '1 failed');
    await counts.getByRole('listitem').filter({ hasText: /^1 pending/ }).waitFor();
    await page.getByText('1 route: ops').waitFor();
    const failures = page.getByRole('list', { name: 'Latest failures' });
    const failure = failures.getByRole('listitem').filter({ has: page.getByRole('button', { name: `Details of action ${action.id.slice(0, 8)}` }) });
    await failure.getByText(/cannot reach the webhook receiver/).waitFor();
    await failure.getByText('failed', { exact: true }).waitFor();
    await waitForText(page.locator('#health-chain-summary'), '✓ The 2 most recent actions all verify.');
    assert.deepEqual(record.errors, []);
    await context.close();
  });
});
