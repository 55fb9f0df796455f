// The policy view shows the execution profile beside the policy, so a HALT by one of its
// rules has a visible rule.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, newPage, repo, startServer } from './lib/harness.mjs';

describe('execution profile in the policy view', { timeout: 120_000 }, () => {
  let withProfile;
  let without;
  let browser;

  before(async () => {
    withProfile = await startServer({
      profile: 'profile.yaml',
      files: { 'profile.yaml': readFileSync(join(repo, 'profiles/default.yaml'), 'utf8') },
    });
    without = await startServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await withProfile?.close();
    await without?.close();
  });

  it('shows the loaded profile: id, hash, allowed tools and its rules', async () => {
    const info = await withProfile.api('GET', '/v1/policy/info');
    assert.equal(info.body.profile.id, 'default');
    const { page, context, record } = await newPage(browser);
    await page.goto(`${withProfile.url}/#/policy`);
    const box = page.locator('#policy-profile');
    await box.getByText(info.body.profile.profile_hash).waitFor();
    await box.getByText('shell, http, stripe').waitFor();
    assert.ok((await box.locator('.profile-rules li').count()) > 0, 'the profile rules are listed');
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('says when no profile is loaded', async () => {
    const { page, context, record } = await newPage(browser);
    await page.goto(`${without.url}/#/policy`);
    await page.locator('#policy-profile').getByText('No execution profile is loaded').waitFor();
    assert.deepEqual(record.errors, []);
    await context.close();
  });
});
