// The connection indicator and the live stream recover after a server restart.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, marker, newPage, row, startServer, waitForText } from './lib/harness.mjs';

describe('live stream across a server restart', { timeout: 120_000 }, () => {
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

  it('shows the outage, reconnects with Last-Event-ID, and catches up', async () => {
    const { page, context } = await newPage(browser);
    const streamRequests = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname === '/v1/events') streamRequests.push(r.headers()); });
    await page.goto(server.url);
    await page.locator('#conn[data-state="live"]').waitFor();
    const m1 = marker('before');
    await server.submit({ agent_id: 'restart', tool: 'http', operation: 'get', params: { url: m1 } });
    await row(page, m1).waitFor();

    await server.stop();
    await page.locator('#conn[data-state="reconnecting"]').waitFor();
    await page.locator('#conn-text').filter({ hasText: /Reconnecting/ }).waitFor();

    await server.start();
    await page.locator('#conn[data-state="live"]').waitFor();
    await waitForText(page.locator('#conn-text'), 'Live');
    assert.ok(streamRequests.some((h) => h['last-event-id']), 'a reconnect resumes with Last-Event-ID');

    const m2 = marker('after');
    await server.submit({ agent_id: 'restart', tool: 'shell', operation: 'run', params: { cmd: `echo ${m2}` } });
    await waitForText(row(page, m2).locator('.c-status'), 'pending approval');
    await context.close();
  });
});
