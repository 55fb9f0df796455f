// The dashboard against a real server without authentication.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, launchBrowser, marker, newPage, row, startServer, waitForText } from './lib/harness.mjs';

const filters = (page) => page.getByRole('search', { name: 'Filter actions' });
const playground = (page) => page.locator('#playground');

describe('dashboard', { timeout: 180_000 }, () => {
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

  /** Opens the dashboard and waits until the first rows are shown and the stream is live. */
  async function open(options) {
    const handle = await newPage(browser, options);
    const response = await handle.page.goto(server.url);
    await handle.page.locator('html[data-ready="true"]').waitFor();
    await handle.page.locator('#conn[data-state="live"]').waitFor();
    return { ...handle, response };
  }

  it('loads against a real server with its hardening headers', async () => {
    const { page, context, record, response } = await open();
    assert.equal(await page.title(), 'Faramesh');
    const csp = response.headers()['content-security-policy'];
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(response.headers()['x-frame-options'], 'DENY');
    await page.getByRole('columnheader', { name: 'Status' }).waitFor();
    await waitForText(page.locator('#conn-text'), 'Live');
    await page.getByText('No actions yet', { exact: false }).waitFor();
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('shows an action submitted over the API live, without a reload', async () => {
    const { page, context, record } = await open();
    await page.evaluate(() => { window.notReloaded = true; });
    const m = marker('live');
    const action = await server.submit({ agent_id: 'live-agent', tool: 'http', operation: 'get', params: { url: `https://example.com/${m}` } });
    const r = row(page, m);
    await r.waitFor();
    await waitForText(r.locator('.c-status'), 'allowed');
    await waitForText(r.locator('.c-risk'), 'low');
    await waitForText(r.locator('.c-agent'), 'live-agent');
    assert.equal(await r.getAttribute('data-id'), action.id);
    assert.equal(await page.evaluate(() => window.notReloaded), true);
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('approves a pending action from the table; the row and the title update', async () => {
    const { page, context } = await open();
    const m = marker('approve');
    const action = await server.submit({ agent_id: 'agent-1', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}` } });
    const r = row(page, m);
    await waitForText(r.locator('.c-status'), 'pending approval');
    await eventually(async () => assert.match(await page.title(), /^\(\d+\) Faramesh$/));
    await r.getByRole('button', { name: /^Approve/ }).click();
    await waitForText(r.locator('.c-status'), 'approved');
    assert.equal(await r.getByRole('button', { name: /^Approve/ }).count(), 0);
    const stored = await server.api('GET', `/v1/actions/${action.id}`);
    assert.equal(stored.body.status, 'approved');
    await context.close();
  });

  it('denies a pending action from the table with a reason, and the reason is stored', async () => {
    const { page, context } = await open();
    const m = marker('deny-table');
    const action = await server.submit({ agent_id: 'agent-1', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}` } });
    const r = row(page, m);
    await waitForText(r.locator('.c-status'), 'pending approval');
    await r.getByRole('textbox', { name: /Reason/ }).fill('not during the freeze');
    await r.getByRole('button', { name: /^Deny/ }).click();
    await waitForText(r.locator('.c-status'), 'denied');
    const stored = await server.api('GET', `/v1/actions/${action.id}`);
    assert.equal(stored.body.status, 'denied');
    assert.equal(stored.body.reason, 'not during the freeze');
    await context.close();
  });

  it('opens the drawer with every field, the event timeline and a verified chain; denies with a reason there', async () => {
    const { page, context } = await open();
    const m = marker('drawer');
    const action = await server.submit({ agent_id: 'agent-2', tool: 'shell', operation: 'run', params: { cmd: `ls ${m}` }, context: { ticket: 'OPS-1' } });
    const r = row(page, m);
    await r.waitFor();
    const opener = r.locator('.c-id button');
    await opener.click();
    const drawer = page.getByRole('dialog', { name: 'shell · run' });
    await drawer.waitFor();
    await drawer.getByText(action.id).first().waitFor();
    await drawer.getByText(/chain verified/).waitFor();
    await drawer.locator('.timeline-item').filter({ hasText: 'decision_made' }).waitFor();
    await drawer.locator('.timeline-item').filter({ hasText: 'created' }).first().waitFor();
    await drawer.getByText(action.request_hash).first().waitFor();
    await drawer.getByText('"ticket": "OPS-1"').waitFor();
    await drawer.getByText('Shell commands require approval').first().waitFor();
    // Copy buttons put ready-to-run commands and SDK snippets on the clipboard.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await drawer.getByRole('button', { name: 'Copy: curl: Get this action' }).click();
    await drawer.getByText('Copied').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `curl -s '${server.url}/v1/actions/${action.id}'`);
    await drawer.getByRole('button', { name: 'Copy: curl: Approve' }).click();
    assert.match(await page.evaluate(() => navigator.clipboard.readText()), new RegExp(`"token":"${action.approval_token}","approve":true`));
    await drawer.getByRole('button', { name: 'Copy: Python SDK' }).click();
    assert.match(await page.evaluate(() => navigator.clipboard.readText()), /from faramesh import/);

    await drawer.getByRole('textbox', { name: 'Reason (optional)' }).fill('needs a ticket first');
    await drawer.getByRole('button', { name: /^Deny/ }).click();
    await drawer.locator('#drawer-subtitle').getByText('denied').waitFor();
    await drawer.locator('.timeline-item').filter({ hasText: 'needs a ticket first' }).waitFor();
    await drawer.getByText(/chain verified \(3 events\)/).waitFor();
    await waitForText(r.locator('.c-status'), 'denied');
    const stored = await server.api('GET', `/v1/actions/${action.id}`);
    assert.equal(stored.body.status, 'denied');
    assert.equal(stored.body.reason, 'needs a ticket first');

    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'hidden' });
    assert.equal(await opener.evaluate((el) => el === document.activeElement), true);
    await context.close();
  });

  it('shows a decision that lost the race (409) plainly', async () => {
    const m = marker('race');
    const action = await server.submit({ agent_id: 'agent-3', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}` } });
    // This page does not hear about the other decision: its live stream is cut.
    const { page, context } = await newPage(browser);
    await page.route('**/v1/events', (route) => route.abort());
    await page.goto(server.url);
    const r = row(page, m);
    await waitForText(r.locator('.c-status'), 'pending approval');
    const other = await server.api('POST', `/v1/actions/${action.id}/approval`, { token: action.approval_token, approve: true, reason: 'elsewhere' });
    assert.equal(other.status, 200);
    await r.getByRole('button', { name: /^Deny/ }).click();
    await page.getByRole('alert').filter({ hasText: /Could not deny action .*Already decided elsewhere/ }).waitFor();
    await waitForText(r.locator('.c-status'), 'approved');
    await context.close();
  });

  it('filters by status, finds agents, tools and operations over the whole ledger, and searches the page', async () => {
    const m = marker('filter');
    await server.submit({ agent_id: `filter-${m}`, tool: 'stripe', operation: 'refund', params: { amount: 10 } });
    await server.submit({ agent_id: `filter-${m}`, tool: 'shell', operation: 'run', params: { cmd: 'true' } });
    await server.submit({ agent_id: 'someone-else', tool: 'http', operation: `op-${m}`, params: { url: 'https://example.com' } });
    const { page, context } = await open();
    await filters(page).getByLabel('Status').selectOption('denied');
    await eventually(async () => {
      const statuses = await page.locator('#actions-body tr:not([hidden]) .c-status').allTextContents();
      assert.ok(statuses.length > 0);
      assert.deepEqual([...new Set(statuses)], ['denied']);
    });
    await filters(page).getByLabel('Status').selectOption('');
    const find = filters(page).getByLabel('Agent, tool or operation');
    // A piece of the agent's name, in other case: both of its actions, found by the server.
    await find.fill(`FILTER-${m}`.slice(0, -2));
    await eventually(async () => {
      const agents = await page.locator('#actions-body tr .c-agent').allTextContents();
      assert.deepEqual(agents, [`filter-${m}`, `filter-${m}`]);
    });
    // An operation's name finds the action of another agent.
    await find.fill(`op-${m}`);
    await eventually(async () => {
      const agents = await page.locator('#actions-body tr .c-agent').allTextContents();
      assert.deepEqual(agents, ['someone-else']);
    });
    // While searching, a new action appears live only when one of its names matches.
    await server.submit({ agent_id: `late-${m}`, tool: 'http', operation: 'get', params: {} });
    await server.submit({ agent_id: `late-${m}`, tool: 'http', operation: `op-${m}`, params: { late: true } });
    await eventually(async () => {
      const params = await page.locator('#actions-body tr .c-params').allTextContents();
      assert.deepEqual(params, ['{"late":true}', '{"url":"https://example.com"}']);
    });
    await find.fill(`filter-${m}`);
    await eventually(async () => assert.equal(await page.locator('#actions-body tr').count(), 2));
    await filters(page).getByLabel('Search this page').fill('refund');
    await eventually(async () => {
      const ops = await page.locator('#actions-body tr:not([hidden]) .c-op').allTextContents();
      assert.deepEqual(ops, ['refund']);
    });
    await page.getByRole('button', { name: 'Clear' }).click();
    await eventually(async () => assert.ok(await page.locator('#actions-body tr').count() > 3));
    await context.close();
  });

  it('says what to do when a search matches too many names to list', async () => {
    const m = marker('broad');
    for (let i = 0; i < 33; i++) {
      await server.submit({ agent_id: `broad-${m}-${String(i).padStart(2, '0')}`, tool: 'http', operation: 'get', params: {} });
    }
    const { page, context } = await open();
    const find = filters(page).getByLabel('Agent, tool or operation');
    await find.fill(`broad-${m}`);
    await page.locator('#table-empty').getByText(/is in 33 agent, tool and operation names .* type more of the name/).waitFor();
    assert.equal(await page.locator('#actions-body tr').count(), 0);
    await find.fill(`broad-${m}-3`);
    await eventually(async () => assert.equal(await page.locator('#actions-body tr').count(), 3));
    assert.equal(await page.locator('#table-empty').isHidden(), true);
    await context.close();
  });

  it('decides an action in the policy playground', async () => {
    const { page, context } = await open();
    await page.getByRole('link', { name: 'Policy' }).click();
    await page.getByText('Allow HTTP GET requests').first().waitFor();
    await page.getByRole('heading', { name: 'Active policy' }).waitFor();
    const info = await server.api('GET', '/v1/policy/info');
    await page.getByText(info.body.policy_hash).waitFor();
    await page.getByText(info.body.policy_version, { exact: true }).waitFor();
    await playground(page).getByLabel('Tool').fill('http');
    await playground(page).getByLabel('Operation').fill('get');
    await playground(page).getByLabel('Params (JSON object)').fill('{"url": "https://example.com"}');
    await page.getByRole('button', { name: 'Decide' }).click();
    const result = page.locator('#playground-result');
    await result.getByText('EXECUTE · allow').waitFor();
    await result.getByText('Allow HTTP GET requests').waitFor();
    await playground(page).getByLabel('Params (JSON object)').fill('{not json');
    await page.getByRole('button', { name: 'Decide' }).click();
    await result.getByText(/Params is not valid JSON/).waitFor();
    await context.close();
  });

  it('renders hostile params as text: no element is created and no script runs', async () => {
    const payload = '<img src=x onerror=alert(1)>';
    const m = marker('xss');
    await server.submit({ agent_id: `<b>${m}</b>`, tool: 'shell', operation: 'run', params: { cmd: payload, note: `<script>alert(2)</script>${m}` } });
    const { page, context, record } = await open();
    const r = row(page, m);
    await r.waitFor();
    await r.getByText(payload, { exact: false }).waitFor();
    await r.getByText(`<b>${m}</b>`, { exact: false }).waitFor();
    await r.locator('.c-id button').click();
    const drawer = page.getByRole('dialog');
    await drawer.getByText(`"cmd": "${payload}"`).waitFor();
    await drawer.getByText(/chain verified/).waitFor();
    assert.equal(await page.locator('#actions-body img, #drawer img, #actions-body b, #drawer b, #drawer script').count(), 0);
    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('is keyboard accessible: a row opens with Enter, Escape closes, focus returns', async () => {
    const m = marker('keys');
    await server.submit({ agent_id: 'kbd', tool: 'http', operation: 'get', params: { url: m } });
    const { page, context } = await open();
    const button = row(page, m).locator('.c-id button');
    await button.focus();
    await page.keyboard.press('Enter');
    const drawer = page.getByRole('dialog');
    await drawer.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'drawer-close');
    // Focus stays inside the open drawer.
    for (let i = 0; i < 5; i++) await page.keyboard.press('Shift+Tab');
    assert.equal(await page.evaluate(() => document.getElementById('drawer').contains(document.activeElement)), true);
    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'hidden' });
    assert.equal(await button.evaluate((el) => el === document.activeElement), true);
    await context.close();
  });

  it('shows an MCP tool call for what it is: server, tool, arguments, client and session', async () => {
    const { page, context, record } = await open();
    const m = marker('mcp');
    const mcp = { transport: 'stdio', server: 'files', session: `session-${m}`, client: { name: 'claude-code', version: '2.1.0' }, protocol_version: '2025-11-25' };
    await server.submit({ agent_id: 'mcp:files', tool: 'files', operation: 'write_file', params: { path: `/srv/${m}.txt`, content: 'hello' }, context: { mcp } });
    const r = row(page, m);
    await r.waitFor();
    await waitForText(r.locator('.c-tool'), 'files MCP');
    await r.locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'files · write_file' });
    await drawer.waitFor();
    const section = drawer.getByRole('region', { name: 'MCP call' });
    await waitForText(section.locator('dd').nth(0), 'files');
    await waitForText(section.locator('dd').nth(1), 'write_file');
    await waitForText(section.locator('dd').nth(2), 'claude-code 2.1.0');
    await waitForText(section.locator('dd').nth(3), `session-${m}`);
    await drawer.getByRole('heading', { name: 'Arguments' }).waitFor();
    await drawer.getByText(`"path": "/srv/${m}.txt"`).waitFor();
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('switches theme and remembers it', async () => {
    const { page, context } = await open({ colorScheme: 'dark' });
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const darkBg = await bg();
    const toggle = page.locator('#theme-toggle');
    await waitForText(toggle, 'Theme: System');
    await toggle.click(); // System → Light
    await waitForText(toggle, 'Theme: Light');
    assert.notEqual(await bg(), darkBg);
    await page.reload();
    await waitForText(page.locator('#theme-toggle'), 'Theme: Light');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
    await context.close();
  });

  it('fits a 375 px wide screen', async () => {
    const { page, context } = await open({ width: 375, height: 740 });
    const m = marker('narrow');
    await server.submit({ agent_id: 'phone', tool: 'shell', operation: 'run', params: { cmd: `echo ${m} ${'x'.repeat(300)}` } });
    const r = row(page, m);
    await r.getByRole('button', { name: /^Approve/ }).waitFor();
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
    await r.locator('.c-id button').click();
    await page.getByRole('dialog').getByText(/chain verified/).waitFor();
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
    await context.close();
  });

  it('pages through actions, newest first', async () => {
    const m = marker('page');
    for (let i = 0; i < 30; i++) {
      await server.submit({ agent_id: m, tool: 'http', operation: 'get', params: { n: i } });
    }
    const { page, context } = await open();
    await filters(page).getByLabel('Agent, tool or operation').fill(m);
    await page.getByLabel('Per page').selectOption('25');
    const shown = () => page.locator('#actions-body tr .c-params').allTextContents();
    const range = (from, to) => Array.from({ length: from - to + 1 }, (_, i) => `{"n":${from - i}}`);
    await eventually(async () => assert.deepEqual(await shown(), range(29, 5)));
    await page.getByRole('button', { name: 'Older →' }).click();
    await eventually(async () => assert.deepEqual(await shown(), range(4, 0)));
    assert.equal(await page.getByRole('button', { name: 'Older →' }).isDisabled(), true);
    await page.getByRole('button', { name: '← Newer' }).click();
    await eventually(async () => assert.deepEqual(await shown(), range(29, 5)));
    await context.close();
  });
});
