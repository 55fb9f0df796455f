// Screenshot of the dashboard with demo data, 1280×800, into docs/dashboard.png:
//   node tests/browser/screenshot.mjs        (after tests/browser/run has installed things,
//                                             or with FARAMESH_BIN set)

import { join } from 'node:path';
import { launchBrowser, newPage, repo, startServer } from './lib/harness.mjs';

const out = process.argv[2] ?? join(repo, 'docs/dashboard.png');
const server = await startServer({ demo: true });
const browser = await launchBrowser();
try {
  const { page } = await newPage(browser, { width: 1280, height: 800, colorScheme: 'light' });
  await page.goto(server.url);
  await page.locator('html[data-ready="true"]').waitFor();
  await page.locator('#conn[data-state="live"]').waitFor();
  await page.locator('#actions-body tr[data-status="pending_approval"]').first().waitFor();
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.close();
}
