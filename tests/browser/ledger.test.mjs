// The drawer's ledger status when the stored action no longer matches its ledger: a row
// rewritten behind the server's back is shown as such, not as a verified chain.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, marker, newPage, row, startServer } from './lib/harness.mjs';

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
});
