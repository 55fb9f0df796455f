// The drawer shows what a shadow policy would have decided otherwise, and which `when`
// expression could not be evaluated.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, marker, newPage, row, startServer } from './lib/harness.mjs';

const ACTIVE = `rules:
  - match: {tool: http, op: get}
    allow: true
  - match: {tool: email, op: send, when: "params.attachments.exists(a, a.bytes > 1000)"}
    deny: true
    description: No big attachments
`;
const CANDIDATE = `rules:
  - match: {tool: http, op: get, url_host: [api.github.com]}
    allow: true
  - match: {tool: http, op: get}
    deny: true
    description: Only the GitHub API may be read
`;

describe('shadow policy and expressions in the drawer', { timeout: 120_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({
      policy: 'active.yaml',
      files: { 'active.yaml': ACTIVE, 'candidate.yaml': CANDIDATE },
      env: { FARAMESH_SHADOW_POLICY: 'candidate.yaml' },
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('shows the shadow outcome of an allowed action the candidate would deny', async () => {
    const m = marker('shadow');
    const action = await server.submit({ agent_id: 'a', tool: 'http', operation: 'get', params: { url: `https://example.com/${m}` } });
    assert.equal(action.status, 'allowed');
    const { page, context, record } = await newPage(browser);
    await page.goto(server.url);
    await page.locator('html[data-ready="true"]').waitFor();
    const r = row(page, m);
    await r.waitFor();
    await r.locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'http · get' });
    await drawer.getByText('would be HALT (POLICY_DENY): Only the GitHub API may be read').waitFor();
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('shows an expression that could not be evaluated and how it counted', async () => {
    const m = marker('expr');
    const action = await server.submit({ agent_id: 'a', tool: 'email', operation: 'send', params: { to: `x-${m}@example.com` } });
    assert.equal(action.status, 'denied');
    const { page, context, record } = await newPage(browser);
    await page.goto(server.url);
    await page.locator('html[data-ready="true"]').waitFor();
    const r = row(page, m);
    await r.waitFor();
    await r.locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'email · send' });
    await drawer.getByText('rule 2: No such key: attachments (counted as matching)').waitFor();
    assert.deepEqual(record.errors, []);
    await context.close();
  });
});
