// The dashboard against a server that requires a bearer token.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, marker, newPage, row, startServer, waitForText } from './lib/harness.mjs';

const TOKEN = 'secret';

describe('dashboard with authentication', { timeout: 120_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ env: { FARAMESH_TOKEN: TOKEN } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('asks for the token once, works after it is entered, and the stream works', async () => {
    const unauthenticated = await server.api('GET', '/v1/actions', undefined, { token: null });
    assert.equal(unauthenticated.status, 401);
    const m1 = marker('before');
    await server.submit({ agent_id: 'auth-agent', tool: 'shell', operation: 'run', params: { cmd: `echo ${m1}` } });

    const { page, context, record } = await newPage(browser);
    await page.goto(server.url);
    const dialog = page.getByRole('dialog', { name: 'API token needed' });
    await dialog.waitFor();
    assert.equal(await dialog.count(), 1);

    // A wrong token is refused and the same form asks again.
    await dialog.getByLabel('API token').fill('wrong');
    await dialog.getByRole('button', { name: 'Use token' }).click();
    await dialog.getByText(/The server refused the token/).waitFor();

    await dialog.getByLabel('API token').fill(TOKEN);
    await dialog.getByRole('button', { name: 'Use token' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await row(page, m1).waitFor();
    await page.locator('#conn[data-state="live"]').waitFor();

    // Live updates arrive over the authenticated stream.
    const m2 = marker('live');
    await server.submit({ agent_id: 'auth-agent', tool: 'shell', operation: 'run', params: { cmd: `echo ${m2}` } });
    await waitForText(row(page, m2).locator('.c-status'), 'pending approval');
    await row(page, m2).getByRole('button', { name: /^Approve/ }).click();
    await waitForText(row(page, m2).locator('.c-status'), 'approved');

    // The token is kept for the session only, and never put into a URL.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('faramesh.token')), TOKEN);
    assert.equal(await page.evaluate(() => localStorage.getItem('faramesh.token')), null);
    assert.deepEqual(record.requests.filter((u) => u.includes(TOKEN)), []);

    // Copyable commands refer to $FARAMESH_TOKEN, never to the token itself.
    await row(page, m1).locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'shell · run' });
    await drawer.getByText(/chain verified/).waitFor();
    const commands = await drawer.locator('.snippet pre').allTextContents();
    assert.ok(commands.some((c) => c.includes('Authorization: Bearer $FARAMESH_TOKEN')));
    assert.deepEqual(commands.filter((c) => c.includes(TOKEN)), []);
    await page.keyboard.press('Escape');

    // A reload in the same tab does not ask again; forgetting the token does.
    await page.reload();
    await row(page, m2).waitFor();
    await page.locator('#conn[data-state="live"]').waitFor();
    assert.equal(await dialog.isVisible(), false);
    await page.getByRole('button', { name: 'Forget token' }).click();
    await dialog.waitFor();
    await context.close();
  });
});
