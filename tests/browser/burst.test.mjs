// Under a burst of submissions and decisions, the live table converges to what the API says.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, launchBrowser, newPage, startServer } from './lib/harness.mjs';

describe('live table under a burst', { timeout: 120_000 }, () => {
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

  it('shows the same first page as the API after 300 submissions and 50 decisions', async () => {
    const { page, context, record } = await newPage(browser);
    await page.goto(server.url);
    await page.locator('#conn[data-state="live"]').waitFor();

    const kinds = [
      { tool: 'shell', operation: 'run', params: { cmd: 'true' } },
      { tool: 'http', operation: 'get', params: { url: 'https://example.com' } },
      { tool: 'stripe', operation: 'refund', params: { amount: 5 } },
    ];
    const submitted = [];
    for (let i = 0; i < 300; i += 30) {
      submitted.push(...await Promise.all(Array.from({ length: 30 }, (_, j) => {
        const kind = kinds[(i + j) % 3];
        return server.submit({ agent_id: `burst-${(i + j) % 5}`, ...kind, params: { ...kind.params, n: i + j } });
      })));
    }
    const pending = submitted.filter((a) => a.status === 'pending_approval').slice(0, 50);
    await Promise.all(pending.map((a, k) => server.api('POST', `/v1/actions/${a.id}/approval`, { token: a.approval_token, approve: k % 2 === 0 })));

    const expected = (await server.api('GET', '/v1/actions?limit=100')).body.map((a) => `${a.id} ${a.status.replace('_', ' ')}`);
    await eventually(async () => {
      const shown = await page.locator('#actions-body tr').evaluateAll((trs) => trs.map((tr) => `${tr.dataset.id} ${tr.querySelector('.c-status').textContent}`));
      assert.deepEqual(shown, expected);
    }, { timeout: 30_000 });
    const pendingTotal = (await server.api('GET', '/v1/actions?status=pending_approval&limit=1000')).body.length;
    await eventually(async () => assert.equal(await page.title(), `(${pendingTotal}) Faramesh`));
    assert.deepEqual(record.errors, []);
    await context.close();
  });
});
