// Measures how fast the dashboard shows 1,000 actions: submits 1,000 to a fresh server, then
// loads the page several times with 1,000 rows per page and prints medians of the page's own
// performance marks. A measurement, not a test: nothing is asserted.
//   node tests/browser/first-paint.mjs [runs]

import { launchBrowser, newPage, startServer } from './lib/harness.mjs';

const runs = Number(process.argv[2] ?? 9);
const server = await startServer();
const kinds = [
  { tool: 'shell', operation: 'run', params: { cmd: 'ls -la /var/log' } },
  { tool: 'http', operation: 'get', params: { url: 'https://api.example.com/v1/items?page=2' } },
  { tool: 'stripe', operation: 'refund', params: { amount: 2500, currency: 'usd', charge: 'ch_123' } },
];
for (let i = 0; i < 1000; i += 50) {
  await Promise.all(Array.from({ length: 50 }, (_, j) => {
    const kind = kinds[(i + j) % 3];
    return server.submit({ agent_id: `agent-${(i + j) % 7}`, ...kind, params: { ...kind.params, n: i + j } });
  }));
}
const browser = await launchBrowser();
try {
  const results = [];
  for (let run = 0; run < runs; run++) {
    const { page, context } = await newPage(browser);
    await page.goto(`${server.url}/ui/favicon.svg`);
    await page.evaluate(() => localStorage.setItem('faramesh.pageSize', '1000'));
    await page.goto(server.url);
    await page.locator('html[data-ready="true"]').waitFor();
    results.push(await page.evaluate(() => {
      const mark = (name) => performance.getEntriesByName(name)[0];
      return {
        rows: document.querySelectorAll('#actions-body tr').length,
        painted: mark('faramesh:first-rows-painted').duration,
        fetched: mark('faramesh:list-fetched').startTime,
        build: mark('faramesh:render-end').startTime - mark('faramesh:render-start').startTime,
      };
    }));
    await context.close();
  }
  const median = (key) => {
    const values = results.map((r) => r[key]).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)].toFixed(0);
  };
  console.log(`${results[0].rows} rows, median of ${runs} page loads:`);
  console.log(`  navigation start → first frame with the rows painted: ${median('painted')} ms`);
  console.log(`  of which: list fetched at ${median('fetched')} ms, rows built in ${median('build')} ms`);
} finally {
  await browser.close();
  await server.close();
}
