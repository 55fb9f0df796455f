// Pending actions as an inbox: what will run is shown in full before Approve/Deny, nothing is
// clipped at 1280 px with a long agent id, the keyboard decides (j/k/a/d, a high-risk action
// after a confirmation), and the drawer shows the params above its decision box and always
// opens at its top.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, launchBrowser, marker, newPage, row, startServer, waitForText } from './lib/harness.mjs';

// Shell waits for a human at medium risk; deploy waits at high risk.
const POLICY = `rules:
  - match: { tool: "shell", op: "*" }
    require_approval: true
    description: "Shell commands require approval"
    risk: "medium"
  - match: { tool: "deploy", op: "*" }
    require_approval: true
    description: "Production deploys need a second pair of eyes"
    risk: "high"
  - match: { tool: "*", op: "*" }
    deny: true
    description: "Default deny rule"
    risk: "high"
`;
const LONG_AGENT = 'customer-support-agent-prod-eu-west-1';

describe('pending inbox', { timeout: 180_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ policy: 'p.yaml', files: { 'p.yaml': POLICY } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function open(options) {
    const handle = await newPage(browser, options);
    await handle.page.goto(server.url);
    await handle.page.locator('html[data-ready="true"]').waitFor();
    await handle.page.locator('#conn[data-state="live"]').waitFor();
    return handle;
  }

  /** Presses j until the row of `id` has focus. */
  async function selectRow(page, id) {
    const ids = await page.locator('#actions-body tr:not([hidden])').evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
    const at = ids.indexOf(id);
    assert.ok(at >= 0, `row ${id} is on the page`);
    await page.locator('body').click({ position: { x: 2, y: 300 } });
    for (let i = 0; i <= at; i += 1) await page.keyboard.press('j');
    await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.dataset?.id), id));
  }

  it('shows the full params, reason, risk, agent and wait of a pending action, unclipped at 1280 px', async () => {
    const { page, context, record } = await open({ width: 1280, height: 800 });
    const m = marker('inbox');
    const cmd = `kubectl --context prod-eu-west-1 -n payments delete deployment checkout-api --grace-period=0 --force && echo ${m}`;
    const action = await server.submit({ agent_id: LONG_AGENT, tool: 'shell', operation: 'run', params: { cmd, ticket: 'OPS-4411' } });
    const r = row(page, m);
    await waitForText(r.locator('.c-status'), 'pending approval');
    // The whole command is in the row, as text, not cut.
    const params = r.locator('.c-params code');
    assert.equal(await params.textContent(), JSON.stringify(action.params));
    await r.locator('.c-params').getByText('Shell commands require approval').waitFor();
    await waitForText(r.locator('.c-risk'), 'medium');
    await waitForText(r.locator('.c-agent'), LONG_AGENT);
    assert.match(await r.locator('.c-age').textContent(), /^waiting \d+s$/);
    // Nothing is clipped: the params show fully, the table does not scroll sideways, and
    // Approve/Deny are inside the viewport.
    const sizes = await page.evaluate(() => {
      const wrap = document.querySelector('#actions-table').parentElement;
      return { scroll: wrap.scrollWidth, client: wrap.clientWidth, width: innerWidth };
    });
    assert.ok(sizes.scroll <= sizes.client, `table scrolls sideways: ${JSON.stringify(sizes)}`);
    const fits = await params.evaluate((el) => ({ sw: el.scrollWidth, cw: el.clientWidth, sh: el.scrollHeight, ch: el.clientHeight }));
    assert.ok(fits.sw <= fits.cw && fits.sh <= fits.ch, `params clipped: ${JSON.stringify(fits)}`);
    const agent = await r.locator('.c-agent').evaluate((el) => ({ sw: el.scrollWidth, cw: el.clientWidth }));
    assert.ok(agent.sw <= agent.cw, `agent clipped: ${JSON.stringify(agent)}`);
    for (const name of [/^Approve/, /^Deny/]) {
      const box = await r.getByRole('button', { name }).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= sizes.width, `${name} outside the viewport: ${JSON.stringify(box)}`);
    }
    // Approve/Deny come after what they decide on.
    const order = await r.evaluate((tr) => {
      const code = tr.querySelector('.c-params code');
      const approve = tr.querySelector('button[data-decide="approve"]');
      return Boolean(code.compareDocumentPosition(approve) & Node.DOCUMENT_POSITION_FOLLOWING);
    });
    assert.equal(order, true);
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('approves the selected action with a; keys do nothing while typing', async () => {
    const { page, context, record } = await open();
    const m = marker('key-approve');
    const action = await server.submit({ agent_id: 'keys', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}` } });
    const r = row(page, m);
    await waitForText(r.locator('.c-status'), 'pending approval');
    // Typing a/d/j in a field decides nothing.
    await r.getByRole('textbox', { name: /Reason/ }).fill('');
    await r.getByRole('textbox', { name: /Reason/ }).pressSequentially('jada');
    assert.equal(await r.getByRole('textbox', { name: /Reason/ }).inputValue(), 'jada');
    await page.locator('#f-search').pressSequentially('a');
    await page.locator('#f-search').fill('');
    assert.equal((await server.api('GET', `/v1/actions/${action.id}`)).body.status, 'pending_approval');

    await selectRow(page, action.id);
    // The selection is visible: a focus outline on the row.
    const outline = await r.evaluate((tr) => getComputedStyle(tr).outlineStyle);
    assert.equal(outline, 'solid');
    await page.keyboard.press('a');
    await waitForText(r.locator('.c-status'), 'approved');
    const stored = await server.api('GET', `/v1/actions/${action.id}`);
    assert.equal(stored.body.status, 'approved');
    assert.equal(stored.body.reason, 'jada');
    assert.deepEqual(record.errors, []);
    assert.deepEqual(record.dialogs, []);
    await context.close();
  });

  it('asks before deciding a high-risk action by key: Escape cancels, Enter confirms', async () => {
    const { page, context, record } = await open();
    const m = marker('key-high');
    const action = await server.submit({ agent_id: 'keys', tool: 'deploy', operation: 'release', params: { service: `checkout-${m}`, version: '2.4.1' } });
    const r = row(page, m);
    await waitForText(r.locator('.c-status'), 'pending approval');
    await waitForText(r.locator('.c-risk'), 'high');
    await selectRow(page, action.id);

    await page.keyboard.press('d');
    const dialog = page.getByRole('dialog', { name: 'Deny this high-risk action?' });
    await dialog.waitFor();
    await dialog.getByText(`checkout-${m}`).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'confirm-ok');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await server.api('GET', `/v1/actions/${action.id}`)).body.status, 'pending_approval');
    await waitForText(r.locator('.c-status'), 'pending approval');
    // Focus is back on the row: the same key asks again, and Enter confirms.
    await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.dataset?.id), action.id));
    await page.keyboard.press('d');
    await dialog.waitFor();
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'hidden' });
    await waitForText(r.locator('.c-status'), 'denied');
    assert.equal((await server.api('GET', `/v1/actions/${action.id}`)).body.status, 'denied');
    assert.deepEqual(record.errors, []);
    assert.deepEqual(record.dialogs, []);
    await context.close();
  });

  it('shows the params above the decision box in the drawer, and opens every action at its top', async () => {
    const { page, context, record } = await open({ width: 1280, height: 700 });
    const m = marker('scroll');
    const long = await server.submit({ agent_id: 'scroll', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}`, script: Array.from({ length: 80 }, (_, i) => `line ${i}`).join('\n') } });
    const other = await server.submit({ agent_id: 'scroll', tool: 'shell', operation: 'run', params: { cmd: `echo other-${m}` } });
    const content = page.locator('#drawer-content');

    await row(page, `echo ${m}"`).locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'shell · run' });
    await drawer.getByText(/chain verified/).waitFor();
    // What will run, then the decision box.
    const order = await drawer.evaluate(() => {
      const params = document.querySelector('#drawer-h-params').closest('section');
      const decide = document.querySelector('.decide-panel');
      return Boolean(params.compareDocumentPosition(decide) & Node.DOCUMENT_POSITION_FOLLOWING);
    });
    assert.equal(order, true);
    await drawer.locator('.decide-panel').getByText('Shell commands require approval').waitFor();
    await content.evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await eventually(async () => assert.ok(await content.evaluate((el) => el.scrollTop) > 300));

    // Another action, by its address while the drawer is open …
    await page.evaluate((id) => { location.hash = `#/action/${id}`; }, other.id);
    await drawer.locator('#drawer-subtitle').getByText(other.id).waitFor();
    assert.equal(await content.evaluate((el) => el.scrollTop), 0);
    await drawer.getByText(/chain verified/).waitFor();
    assert.equal(await content.evaluate((el) => el.scrollTop), 0);
    assert.equal(await drawer.getByRole('button', { name: /^Approve/ }).isVisible(), true);

    // … and after closing a scrolled drawer, from the table.
    await page.evaluate((id) => { location.hash = `#/action/${id}`; }, long.id);
    await drawer.locator('#drawer-subtitle').getByText(long.id).waitFor();
    await drawer.getByText(/chain verified/).waitFor();
    await content.evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await eventually(async () => assert.ok(await content.evaluate((el) => el.scrollTop) > 300));
    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'hidden' });
    await row(page, `other-${m}`).locator('.c-id button').click();
    await drawer.locator('#drawer-subtitle').getByText(other.id).waitFor();
    assert.equal(await content.evaluate((el) => el.scrollTop), 0);
    const box = await drawer.getByRole('button', { name: /^Approve/ }).boundingBox();
    assert.ok(box && box.y + box.height <= 700, `Approve below the fold: ${JSON.stringify(box)}`);
    assert.deepEqual(record.errors, []);
    await context.close();
  });
});
