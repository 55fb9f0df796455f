// Approval rules with a quorum (two distinct people), and the deliveries of notifications,
// against a real server with tokens per approver and a routes file whose receiver is down.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, launchBrowser, marker, newPage, row, startServer, waitForText } from './lib/harness.mjs';

const ADMIN = 'admin-secret';
const POLICY = `rules:
  - match: {tool: stripe, op: refund}
    require_approval: {approvers: 2}
    description: Refunds need two people
  - match: {tool: "*", op: "*"}
    allow: true
`;
// Port 9 refuses connections: deliveries stay pending, with an error, and are retried.
const ROUTES = `routes:
  audit:
    webhook: {url: "http://127.0.0.1:9/hook", secret: "s3cret-for-test"}
`;

const shortId = (id) => id.slice(0, 8);
// Chromium logs every refused request on the console: the 401 before a token is entered, and
// the 403 and 409 these tests provoke. Anything else is an error of the page.
const pageErrors = (record) => record.errors.filter((e) => !/^console: Failed to load resource: the server responded with a status of (401|403|409) /.test(e));

describe('approvals under a quorum, and notification deliveries', { timeout: 180_000 }, () => {
  let server;
  let browser;
  const tokens = {};

  before(async () => {
    server = await startServer({ env: { FARAMESH_TOKEN: ADMIN }, files: { 'policy.yaml': POLICY, 'notify.yaml': ROUTES }, policy: 'policy.yaml' });
    browser = await launchBrowser();
    for (const name of ['alice', 'bob']) {
      const created = await server.api('POST', '/v1/tokens', { name, role: 'approver' });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      tokens[name] = created.body.token;
    }
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A page signed in with `token` through the token form, showing `path`, live. */
  async function signIn(token, path = '/') {
    const handle = await newPage(browser);
    await handle.page.goto(`${server.url}${path}`);
    const dialog = handle.page.getByRole('dialog', { name: 'API token needed' });
    await dialog.getByLabel('API token').fill(token);
    await dialog.getByRole('button', { name: 'Use token' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await handle.page.locator('html[data-ready="true"]').waitFor();
    await handle.page.locator('#conn[data-state="live"]').waitFor();
    return handle;
  }

  /** A refund the admin submits: it waits for two approvals. */
  async function refund(m) {
    const action = await server.submit({ agent_id: 'a', tool: 'stripe', operation: 'refund', params: { amount: 5000, note: m } });
    assert.equal(action.status, 'pending_approval');
    assert.equal(action.approvals_required, 2);
    return action;
  }

  it('counts approvals towards the quorum: one leaves the action pending, twice by one person is refused, a second person approves it', async () => {
    const m = marker('quorum');
    const action = await refund(m);
    const asAlice = await signIn(tokens.alice);
    const asBob = await signIn(tokens.bob);
    const aliceRow = row(asAlice.page, m);
    const bobRow = row(asBob.page, m);
    await waitForText(aliceRow.locator('.c-status'), 'pending approval 0 of 2 approvals');
    await waitForText(bobRow.locator('.c-status'), 'pending approval 0 of 2 approvals');

    // Alice approves in the drawer: 1 of 2, still pending, the decision box stays.
    await aliceRow.locator('.c-id button').click();
    const drawer = asAlice.page.getByRole('dialog', { name: 'stripe · refund' });
    const approvals = drawer.getByRole('region', { name: 'Approvals' });
    await approvals.getByText('0 of 2 approvals').waitFor();
    await approvals.getByText('No approvals yet.').waitFor();
    await drawer.getByRole('textbox', { name: 'Reason (optional)' }).fill('checked the ticket');
    await drawer.getByRole('button', { name: /^Approve/ }).click();
    await approvals.getByText('1 of 2 approvals').waitFor();
    const given = approvals.locator('.approvals-list li');
    await given.filter({ hasText: 'alice' }).filter({ hasText: 'checked the ticket' }).waitFor();
    assert.equal(await given.count(), 1);
    await drawer.getByRole('status').filter({ hasText: 'Your approval is recorded' }).waitFor();
    await waitForText(drawer.locator('#drawer-subtitle .pill').first(), 'pending approval');
    await drawer.locator('#drawer-subtitle').getByText('1 of 2 approvals').waitFor();
    assert.equal(await drawer.getByRole('button', { name: /^Approve/ }).isVisible(), true);
    assert.equal(await drawer.getByRole('button', { name: /^Deny/ }).isVisible(), true);
    await waitForText(aliceRow.locator('.c-status'), 'pending approval 1 of 2 approvals');
    // Bob's page hears of it on the live stream, which carries no approvals: it re-reads the count.
    await waitForText(bobRow.locator('.c-status'), 'pending approval 1 of 2 approvals');
    const stored = await server.api('GET', `/v1/actions/${action.id}`);
    assert.equal(stored.body.status, 'pending_approval');
    assert.deepEqual(stored.body.approvals.map((a) => a.by), ['alice']);

    // Approving twice counts once: the server's explanation is shown, the count does not move.
    await drawer.getByRole('button', { name: /^Approve/ }).click();
    const error = drawer.locator('.decide-panel .error');
    await error.filter({ hasText: `alice already approved action ${action.id}` }).waitFor();
    await error.filter({ hasText: 'an approval counts once per person, so another approver must approve' }).waitFor();
    assert.doesNotMatch(await error.textContent(), /Already decided elsewhere/);
    await approvals.getByText('1 of 2 approvals').waitFor();
    assert.equal(await drawer.getByRole('button', { name: /^Approve/ }).isVisible(), true);

    // Bob approves from his table: the quorum is reached.
    await bobRow.getByRole('button', { name: /^Approve/ }).click();
    await waitForText(bobRow.locator('.c-status'), 'approved');
    assert.equal(await bobRow.getByRole('button', { name: /^Approve/ }).count(), 0);

    // Alice's open drawer follows: approved, both names, no decision box.
    await waitForText(drawer.locator('#drawer-subtitle .pill').first(), 'approved');
    await approvals.getByText('2 of 2 approvals').waitFor();
    await eventually(async () => assert.deepEqual(await given.locator('.approval-by').allTextContents(), ['alice', 'bob']));
    await drawer.getByRole('button', { name: /^Approve/ }).waitFor({ state: 'hidden' });
    await waitForText(aliceRow.locator('.c-status'), 'approved');
    const decided = await server.api('GET', `/v1/actions/${action.id}`);
    assert.equal(decided.body.status, 'approved');

    assert.deepEqual(pageErrors(asAlice.record), []);
    assert.deepEqual(pageErrors(asBob.record), []);
    assert.deepEqual(asAlice.record.dialogs, []);
    await asAlice.context.close();
    await asBob.context.close();
  });

  it('shows why the submitter may not approve (403)', async () => {
    const m = marker('submitter');
    const action = await refund(m);
    const { page, context, record } = await signIn(ADMIN);
    const r = row(page, m);
    await waitForText(r.locator('.c-status'), 'pending approval 0 of 2 approvals');
    await r.locator('.c-id button').click();
    const drawer = page.getByRole('dialog', { name: 'stripe · refund' });
    const approvals = drawer.getByRole('region', { name: 'Approvals' });
    await approvals.getByText('admin (may not approve it)').waitFor();
    await drawer.getByRole('button', { name: /^Approve/ }).click();
    await drawer.locator('.decide-panel .error')
      .filter({ hasText: `Not allowed: admin submitted action ${action.id} and cannot approve it` }).waitFor();
    await approvals.getByText('0 of 2 approvals').waitFor();
    assert.equal(await drawer.getByRole('button', { name: /^Approve/ }).isVisible(), true);
    assert.deepEqual(pageErrors(record), []);
    await context.close();
  });

  it('lists deliveries with their state and last error; an action opens from there and lists its own', async () => {
    const m = marker('deliveries');
    const action = await refund(m);
    // The receiver refuses connections: the delivery of the request stays pending with an error.
    await eventually(async () => {
      const { body } = await server.api('GET', `/v1/notifications?action_id=${action.id}`);
      assert.equal(body.length, 1);
      assert.match(body[0].last_error ?? '', /cannot reach the webhook receiver/);
    }, { timeout: 30_000 });

    const { page, context, record } = await signIn(tokens.alice);
    await page.getByRole('link', { name: 'Deliveries' }).click();
    await page.getByRole('heading', { name: 'Notification deliveries' }).waitFor();
    assert.equal(await page.locator('#view-actions').isVisible(), false);
    const routes = page.getByRole('list', { name: 'Notification routes' });
    await waitForText(routes.getByRole('listitem'), 'audit webhook');

    const filters = page.getByRole('search', { name: 'Filter deliveries' });
    await filters.getByLabel('State').selectOption('pending');
    const delivery = page.locator('#deliveries-body tr').filter({ has: page.getByRole('button', { name: `Details of action ${shortId(action.id)}` }) });
    await delivery.waitFor();
    assert.equal(await delivery.count(), 1);
    const cell = (label) => delivery.locator(`td[data-label="${label}"]`);
    await waitForText(cell('Route'), 'audit');
    await waitForText(cell('Kind'), 'approval.requested');
    await waitForText(cell('State'), 'pending');
    assert.ok(Number(await cell('Attempts').textContent()) >= 1);
    await cell('Outcome').filter({ hasText: /cannot reach the webhook receiver/ }).waitFor();
    await cell('Time').locator('time').waitFor();
    const states = await page.locator('#deliveries-body td[data-label="State"]').allTextContents();
    assert.deepEqual([...new Set(states)], ['pending']);

    // Refresh reads them again; a filter nothing matches says so.
    const reads = () => record.requests.filter((u) => new URL(u).pathname === '/v1/notifications').length;
    const before = reads();
    await page.getByRole('button', { name: 'Refresh' }).click();
    await eventually(async () => assert.ok(reads() > before));
    await delivery.waitFor();
    await filters.getByLabel('State').selectOption('delivered');
    await page.getByText('No deliveries match these filters.').waitFor();
    assert.equal(await page.locator('#deliveries-body tr').count(), 0);
    await filters.getByLabel('State').selectOption('');
    await delivery.waitFor();

    // The action opens over the deliveries, and its drawer lists its notifications.
    const opener = delivery.getByRole('button', { name: `Details of action ${shortId(action.id)}` });
    await opener.click();
    const drawer = page.getByRole('dialog', { name: 'stripe · refund' });
    await drawer.getByText(action.id).first().waitFor();
    assert.equal(new URL(page.url()).hash, `#/action/${action.id}`);
    const notifications = drawer.getByRole('region', { name: 'Notifications' });
    const item = notifications.getByRole('listitem').filter({ hasText: 'audit' });
    await item.filter({ hasText: 'approval.requested' }).waitFor();
    await waitForText(item.locator('.pill'), 'pending');
    await item.filter({ hasText: /cannot reach the webhook receiver/ }).waitFor();
    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'hidden' });
    assert.equal(new URL(page.url()).hash, '#/deliveries');
    assert.equal(await page.locator('#view-deliveries').isVisible(), true);
    assert.equal(await opener.evaluate((el) => el === document.activeElement), true);

    assert.deepEqual(pageErrors(record), []);
    await context.close();
  });

  it('says how to add routes when the server has none; ordinary actions show no approvals or notifications', async () => {
    const plain = await startServer();
    try {
      const m = marker('plain');
      const action = await plain.submit({ agent_id: 'plain', tool: 'shell', operation: 'run', params: { cmd: `echo ${m}` } });
      assert.equal(action.approvals_required, undefined);
      const { page, context, record } = await newPage(browser, { colorScheme: 'dark' });
      await page.goto(`${plain.url}/#/deliveries`);
      await page.getByRole('heading', { name: 'Notification deliveries' }).waitFor();
      await page.getByText('No notification routes: start faramesh serve with a routes file (--notify FILE).').waitFor();
      await page.getByText('No deliveries yet.', { exact: false }).waitFor();
      assert.equal(await page.locator('#deliveries-body tr').count(), 0);

      await page.getByRole('link', { name: 'Actions', exact: true }).click();
      const r = row(page, m);
      await waitForText(r.locator('.c-status'), 'pending approval');
      assert.equal(await r.locator('.approvals-count').count(), 0);
      await r.locator('.c-id button').click();
      const drawer = page.getByRole('dialog', { name: 'shell · run' });
      await drawer.getByText(/chain verified/).waitFor();
      assert.equal(await drawer.getByRole('region', { name: 'Approvals' }).count(), 0);
      assert.equal(await drawer.getByRole('region', { name: 'Notifications' }).count(), 0);
      assert.equal(await drawer.locator('.approvals-count').count(), 0);
      assert.deepEqual(record.errors, []);
      await context.close();
    } finally {
      await plain.close();
    }
  });
});
