// The policy view's limits with their usage by key, and the drawer's "Limit" row of an action
// a limit denied.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, marker, newPage, row, startServer, waitForText } from './lib/harness.mjs';

const POLICY = `rules:
  - match: {tool: shell, op: run}
    allow: true
  - match: {tool: stripe, op: refund}
    allow: true
limits:
  - name: shell-burst
    match: {tool: shell}
    per: agent_id
    max_calls: 3
    window: 1h
  - name: refunds-daily
    match: {tool: stripe, op: refund}
    sum: params.amount
    max: 5000
    window: 24h
    on_exceed: require_approval
`;
const NO_LIMITS = `rules:
  - match: {tool: shell, op: run}
    allow: true
`;

describe('limits', { timeout: 120_000 }, () => {
  let server;
  let plain;
  let browser;
  let denied;
  const m = marker('limit');

  before(async () => {
    [server, plain, browser] = await Promise.all([
      startServer({ policy: 'p.yaml', files: { 'p.yaml': POLICY } }),
      startServer({ policy: 'p.yaml', files: { 'p.yaml': NO_LIMITS } }),
      launchBrowser(),
    ]);
    // Three shell actions fit shell-burst; the fourth is over it.
    for (let i = 1; i <= 4; i += 1) {
      const action = await server.submit({ agent_id: 'bot-7', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}-${i}` } });
      if (i <= 3) {
        assert.equal(action.status, 'allowed');
      } else {
        assert.equal(action.status, 'denied');
        assert.equal(action.reason_code, 'LIMIT_EXCEEDED');
        denied = action;
      }
    }
    const refund = await server.submit({ agent_id: 'billing', tool: 'stripe', operation: 'refund', params: { amount: 1200 } });
    assert.equal(refund.status, 'allowed');
  });
  after(async () => {
    await browser?.close();
    await Promise.all([server?.close(), plain?.close()]);
  });

  /** Opens the policy view and waits for its Limits section. */
  async function openLimits(url, options) {
    const handle = await newPage(browser, options);
    await handle.page.goto(`${url}/#/policy`);
    const limits = handle.page.getByRole('region', { name: 'Limits' });
    await limits.waitFor();
    return { ...handle, limits };
  }

  it('shows each limit, what it counts, what happens over it, and its usage by key', async () => {
    const { page, context, record, limits } = await openLimits(server.url);

    const burst = limits.getByRole('region', { name: 'shell-burst' });
    await burst.getByText('3 calls per 1h, per agent_id').waitFor();
    await burst.getByText('then denied', { exact: true }).waitFor();
    const key = burst.getByRole('row').filter({ hasText: 'agent:bot-7' });
    await waitForText(key.locator('td').nth(1), '3 of 3 full');
    assert.equal(await key.getAttribute('data-level'), 'full');
    assert.match(await key.getAttribute('class'), /\busage-full\b/);
    await waitForText(key.locator('td').nth(2), '3');
    const meter = key.getByRole('meter', { name: 'shell-burst usage of agent:bot-7: 3 of 3 (full)' });
    assert.equal(await meter.getAttribute('min'), '0');
    assert.equal(await meter.getAttribute('max'), '3');
    assert.equal(await meter.getAttribute('value'), '3');
    assert.match(await meter.getAttribute('class'), /\busage-full\b/);

    const refunds = limits.getByRole('region', { name: 'refunds-daily' });
    await refunds.getByText('sum of params.amount up to 5000 per 24h, per agent_id').waitFor();
    await refunds.getByText('then a human decides', { exact: true }).waitFor();
    const billing = refunds.getByRole('row').filter({ hasText: 'agent:billing' });
    await waitForText(billing.locator('td').nth(1), '1200 of 5000');
    assert.equal(await billing.getAttribute('data-level'), 'ok');
    await waitForText(billing.locator('td').nth(2), '1');
    const bar = billing.getByRole('meter', { name: 'refunds-daily usage of agent:billing: 1200 of 5000' });
    assert.equal(await bar.getAttribute('max'), '5000');
    assert.equal(await bar.getAttribute('value'), '1200');
    assert.equal(await billing.getByText('full').count(), 0);

    // The full key is drawn in the theme's error colour, the other one not.
    const fill = (locator) => locator.locator('td').nth(1).locator('span').first()
      .evaluate((el) => getComputedStyle(el).color);
    assert.notEqual(await fill(key), await fill(billing));

    // Refresh reads the usage again (nothing polls).
    await refunds.getByText('1200 of 5000').waitFor();
    const more = await server.submit({ agent_id: 'billing', tool: 'stripe', operation: 'refund', params: { amount: 2800.5 } });
    assert.equal(more.status, 'allowed');
    await page.getByRole('button', { name: 'Refresh limits' }).click();
    await waitForText(billing.locator('td').nth(1), '4000.5 of 5000');
    await waitForText(billing.locator('td').nth(2), '2');
    assert.equal(await billing.getAttribute('data-level'), 'near');
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('shows a limit without usage in its window as such, in the dark theme too', async () => {
    const other = await startServer({ policy: 'p.yaml', files: { 'p.yaml': POLICY } });
    try {
      const { context, record, limits } = await openLimits(other.url, { colorScheme: 'dark' });
      await limits.getByRole('region', { name: 'shell-burst' }).getByText('No usage in the window').waitFor();
      await limits.getByRole('region', { name: 'refunds-daily' }).getByText('No usage in the window').waitFor();
      assert.equal(await limits.getByRole('meter').count(), 0);
      assert.deepEqual(record.errors, []);
      await context.close();
    } finally {
      await other.close();
    }
  });

  it('shows the limit that denied an action, or sent it to a human, in the drawer', async () => {
    const { page, context, record } = await newPage(browser);
    await page.goto(server.url);
    await page.locator('html[data-ready="true"]').waitFor();
    const r = row(page, `${m}-4`);
    await r.waitFor();
    await r.locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'shell · run' });
    const decision = drawer.getByRole('region', { name: 'Decision', exact: true });
    await decision.getByText('LIMIT_EXCEEDED', { exact: true }).waitFor();
    const label = decision.locator('dt').filter({ hasText: /^Limit$/ });
    await label.waitFor();
    assert.equal(await label.locator('xpath=following-sibling::dd[1]').textContent(), 'shell-burst: 3 of 3 used in 1h (agent:bot-7)');
    assert.equal(await page.locator('#drawer-subtitle .mono').textContent(), denied.id);

    // An allowed action has no Limit row.
    await drawer.getByRole('button', { name: /^Close/ }).click();
    await row(page, `${m}-1`).locator('.c-id button').click();
    await page.locator('#drawer-subtitle .mono').filter({ hasNotText: denied.id }).waitFor();
    await decision.getByText('POLICY_ALLOW', { exact: true }).waitFor();
    assert.equal(await decision.locator('dt').filter({ hasText: /^Limit$/ }).count(), 0);
    await drawer.getByRole('button', { name: /^Close/ }).click();

    // A refund over the budget waits for a human; the row says what it would have added.
    const big = await server.submit({ agent_id: 'big', tool: 'stripe', operation: 'refund', params: { amount: 6000 } });
    assert.equal(big.status, 'pending_approval');
    assert.equal(big.reason_code, 'LIMIT_EXCEEDED');
    // It arrives in the table live.
    await page.locator(`#actions-body tr[data-id="${big.id}"]`).locator('.c-id button').click();
    const refund = page.getByRole('dialog', { name: 'stripe · refund' }).getByRole('region', { name: 'Decision', exact: true });
    await refund.getByText('refunds-daily: 0 of 5000 used in 24h, and this action adds 6000 (agent:big)', { exact: true }).waitFor();
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('says how to add limits when the policy has none', async () => {
    const { context, record, limits } = await openLimits(plain.url);
    await limits.getByText('The policy has no limits: add limits: to it to cap how often or how much agents may act (see docs/policies.md#limits).').waitFor();
    await limits.locator('code').filter({ hasText: /^limits:$/ }).waitFor();
    assert.equal(await limits.getByRole('region').count(), 0);
    assert.equal(await limits.getByRole('table').count(), 0);
    assert.deepEqual(record.errors, []);
    await context.close();
  });
});
