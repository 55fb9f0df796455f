// A server started with --demo: demo actions carry a visible badge.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, launchBrowser, newPage, startServer } from './lib/harness.mjs';

describe('demo data', { timeout: 60_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ demo: true });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('marks demo actions with a badge in the table and the drawer', async () => {
    const demo = (await server.api('GET', '/v1/actions?limit=100')).body;
    assert.ok(demo.length > 0 && demo.every((a) => a.demo === true));
    const { page, context, record } = await newPage(browser);
    await page.goto(server.url);
    await page.locator('html[data-ready="true"]').waitFor();
    const rows = page.locator('#actions-body tr');
    assert.equal(await rows.count(), demo.length);
    assert.equal(await page.locator('#actions-body .c-agent .badge-demo').count(), demo.length);
    const pending = demo.filter((a) => a.status === 'pending_approval').length;
    await eventually(async () => assert.equal(await page.title(), pending ? `(${pending}) Faramesh` : 'Faramesh'));
    await rows.first().locator('.c-id button').click();
    await page.getByRole('dialog').locator('#drawer-subtitle .badge-demo').waitFor();
    assert.deepEqual(record.errors, []);
    await context.close();
  });
});
