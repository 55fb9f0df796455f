// The drawer's ledger status: an action proved in the signed Merkle log in the browser, and
// one whose stored row no longer matches its ledger (rewritten behind the server's back) shown
// as such, not as a verified chain.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, launchBrowser, marker, newPage, row, startServer } from './lib/harness.mjs';

describe('ledger status in the drawer', { timeout: 120_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('shows an action\'s events included in a signed checkpoint, checked in the browser', async () => {
    const m = marker('inlog');
    await server.submit({ agent_id: 'ledger', tool: 'http', operation: 'get', params: { url: `https://example.com/${m}` } });
    const { page, context } = await newPage(browser);
    await page.goto(server.url);
    await page.locator('html[data-ready="true"]').waitFor();
    const r = row(page, m);
    await r.waitFor();
    await r.locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'http · get' });
    await drawer.getByText(/✓ included in checkpoint \d+ \(verified\)/).waitFor();
    await context.close();
  });

  it('shows an action whose params were rewritten in the database as not matching its ledger', async () => {
    const m = marker('tamper');
    const action = await server.submit({ agent_id: 'ledger', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}` } });
    await server.stop();
    // What someone with write access to the database file could do: change what will run.
    const script = 'import sqlite3, sys\n'
      + 'db = sqlite3.connect(sys.argv[1])\n'
      + 'db.execute("UPDATE actions SET params = ? WHERE id = ?", (sys.argv[3], sys.argv[2]))\n'
      + 'db.commit()\n';
    execFileSync('python3', ['-c', script, join(server.dir, 'a.db'), action.id, JSON.stringify({ cmd: `rm -rf / ${m}` })]);
    await server.start();

    const { page, context } = await newPage(browser);
    await page.goto(server.url);
    await page.locator('html[data-ready="true"]').waitFor();
    const r = row(page, m);
    await r.waitFor();
    await r.locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'shell · run' });
    await drawer.getByText('✗ action does not match its ledger').waitFor();
    await drawer.getByText(/request_hash/).first().waitFor();
    assert.equal(await drawer.getByText(/chain verified/).count(), 0);
    await context.close();
  });

  it('shows an action whose event was rewritten in the database as not proved in the signed log', async () => {
    const m = marker('rewrite');
    const action = await server.submit({ agent_id: 'ledger', tool: 'http', operation: 'get', params: { url: `https://example.com/${m}` } });
    // Signed before the rewrite: the checkpoint pins the event as it was.
    await eventually(async () => {
      const note = (await fetch(`${server.url}/v1/log/checkpoint`).then((r) => r.text())).split('\n');
      const events = await fetch(`${server.url}/v1/actions/${action.id}/events`).then((r) => r.json());
      assert.ok(Number(note[1]) > Math.max(...events.map((e) => e.log_index)), 'a checkpoint covering the action');
    });
    await server.stop();
    const script = 'import sqlite3, sys\n'
      + 'db = sqlite3.connect(sys.argv[1])\n'
      + 'db.execute("DROP TRIGGER events_no_update")\n'
      + 'db.execute("UPDATE events SET record_hash = ? WHERE action_id = ? AND event_type = \'decision_made\'", ("00" * 32, sys.argv[2]))\n'
      + 'db.commit()\n';
    execFileSync('python3', ['-c', script, join(server.dir, 'a.db'), action.id]);
    await server.start();

    const { page, context } = await newPage(browser);
    await page.goto(server.url);
    await page.locator('html[data-ready="true"]').waitFor();
    const r = row(page, m);
    await r.waitFor();
    await r.locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'http · get' });
    // The rewritten event's leaf no longer leads to the signed root, and neither does its
    // neighbour's proof, which passes through it.
    await drawer.getByText(/✗ not proved in the signed log: event (created|decision_made) \(log_index \d+\) is not in checkpoint \d+/).waitFor();
    assert.equal(await drawer.getByText(/included in checkpoint/).count(), 0);
    await context.close();
  });
});
