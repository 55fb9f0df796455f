// Screenshots of the dashboard with the real demo data (`faramesh serve --demo` with the
// shipped policy and profile: policies/default.yaml, profiles/default.yaml), 1280×800, in
// both themes: docs/dashboard.png (light) and docs/dashboard-dark.png (dark).
//   FARAMESH_BIN=target/debug/faramesh node tests/browser/screenshot.mjs [OUT_DIR]
//   (after tests/browser/run has installed things)

import { join } from 'node:path';
import { launchBrowser, newPage, repo, startServer } from './lib/harness.mjs';

const outDir = process.argv[2] ?? join(repo, 'docs');
const server = await startServer({ demo: true, profile: join(repo, 'profiles/default.yaml') });
const browser = await launchBrowser();
try {
  for (const [colorScheme, name] of [['light', 'dashboard.png'], ['dark', 'dashboard-dark.png']]) {
    const { page, context } = await newPage(browser, { width: 1280, height: 800, colorScheme });
    await page.goto(server.url);
    await page.locator('html[data-ready="true"]').waitFor();
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.locator('#actions-body tr[data-status="pending_approval"]').first().waitFor();
    const out = join(outDir, name);
    await page.screenshot({ path: out });
    console.log(`wrote ${out}`);
    await context.close();
  }
} finally {
  await browser.close();
  await server.close();
}
