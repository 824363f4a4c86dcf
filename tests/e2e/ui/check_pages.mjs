// Drives Debian's headless Chromium through the pages a user of the Dagster UI looks at, waits
// for each page's text (no fixed sleeps), and saves a PNG of each. Run by tests/e2e/test_ui_browser.py:
//   node check_pages.mjs '{"baseUrl": ..., "runId": ..., "outDir": ..., "userDataDir": ..., "chromium": ...}'
// With "paused": {"runId": ..., "reason": ...} it checks the pages that show a paused partition instead.
// Prints one JSON line per page checked; exits 1 (after a "<page>-failed.png") when a check fails.
import { chromium } from 'playwright-core';
import path from 'node:path';

const cfg = JSON.parse(process.argv[2]);
const timeout = cfg.timeoutMs ?? 30000;
const shot = (name) => path.join(cfg.outDir, `${name}.png`);

// The flags of this machine's docs: without the background-networking ones Chromium keeps trying
// (and failing) to reach Google's hosts through the closed network. Playwright adds --headless.
const ctx = await chromium.launchPersistentContext(cfg.userDataDir, {
  executablePath: cfg.chromium,
  headless: true,
  viewport: { width: 1400, height: 900 },
  timeout,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
ctx.setDefaultTimeout(timeout);
const page = ctx.pages()[0] ?? (await ctx.newPage());

let current = 'start';
async function see(text, scope = page, exact = true) {
  await scope.getByText(text, { exact }).first().waitFor({ state: 'visible' });
  return text;
}
async function settle() {
  // Let the SPA finish its GraphQL round-trips before the screenshot (best effort: it polls).
  await page.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => {});
}
function report(name, found) {
  console.log(JSON.stringify({ page: name, url: page.url(), screenshot: shot(name), found }));
}

// A paused partition, after a run of it met the pause: where a user looks, the asset's checks and the
// partition's page say that it is paused, why, and what to run.
async function pausedPages() {
  const id8 = cfg.paused.runId.slice(0, 8);
  const fix = 'durable-sync resume files_to_sqlite';

  // The asset's overview: the latest materialization attempt failed, in that run.
  current = 'paused-asset';
  await page.goto(`${cfg.baseUrl}/assets/files_to_sqlite`);
  let found = [await see('Latest materialization'), await see('Failed in', page, false), await see(id8), await see('Latest check results')];
  await settle();
  await page.screenshot({ path: shot(current) });
  report(current, found);

  // The asset's checks: not_paused failed for partition tasks, with the reason and the command.
  current = 'paused-check';
  await page.goto(`${cfg.baseUrl}/assets/files_to_sqlite?view=checks&checkDetail=not_paused`);
  found = [
    await see('not_paused'),
    await see(cfg.paused.reason, page, false),
    await see(fix, page, false),
    await see('Partition'),
    await see('tasks'),
    await see('partition:files_to_sqlite/tasks'),
  ];
  await settle();
  await page.screenshot({ path: shot(current) });
  report(current, found);

  // The partition's page: the failed run, and the pause observed on the partition.
  current = 'paused-partition';
  await page.goto(`${cfg.baseUrl}/assets/files_to_sqlite?view=partitions&partition=tasks`);
  found = [
    await see(`Run ${id8} failed, and did not materialize this asset.`),
    await see('reason'),
    await see(cfg.paused.reason),
    await see('resume_with'),
    await see(fix),
  ];
  await settle();
  await page.screenshot({ path: shot(current) });
  report(current, found);
}

try {
  if (cfg.paused) {
    await pausedPages();
  } else {
    await firstRunPages();
  }
} catch (err) {
  await page.screenshot({ path: shot(`${current}-failed`) }).catch(() => {});
  console.error(`page ${current} (${page.url()}): ${err.message}`);
  process.exitCode = 1;
} finally {
  await ctx.close();
}

async function firstRunPages() {
  const id8 = cfg.runId.slice(0, 8);

  // (a) The asset graph: the "Lineage" entry of the navigation, /asset-groups ("Global asset
  // lineage"). It opens with every group collapsed, so expand them as a user would, then reload:
  // the expanded groups live in the URL (?expanded=...), and the reloaded graph is zoomed to fit.
  current = 'lineage-groups';
  await page.goto(`${cfg.baseUrl}/asset-groups`);
  const graph = page.locator('svg');
  let found = [await see('Global asset lineage'), await see('sources', graph), await see('files_to_sqlite', graph)];
  await settle();
  await page.screenshot({ path: shot(current) });
  report(current, found);

  current = 'lineage';
  const collapsed = graph.locator('[class*="collapsedGroupNodeBox"]');
  await collapsed.first().waitFor();
  while ((await collapsed.count()) > 0) await collapsed.first().click();
  await page.waitForURL(/expanded=/);
  await page.reload();
  // Asset nodes are labelled with their key (data-tooltip holds the full name when it is cut).
  found = [];
  for (const key of ['files', 'files_to_sqlite', 'files_to_sqlite_link_report']) {
    const label = graph.locator(`[data-tooltip="${key}"]`).last();
    await label.waitFor({ state: 'visible' });
    found.push(await label.innerText());
  }
  await see('sources', graph);
  await settle();
  await page.screenshot({ path: shot(current) });
  report(current, found);

  // (b) The route asset's partitions: the dynamic partition "tasks", materialized by that run.
  current = 'partitions';
  await page.goto(`${cfg.baseUrl}/assets/files_to_sqlite?view=partitions`);
  found = [await see('files_to_sqlite'), await see('Materialized (1)'), await see('tasks')];
  await settle();
  await page.screenshot({ path: shot(current) });
  report(current, found);

  current = 'partition-tasks';
  await page.getByText('tasks', { exact: true }).first().click();
  await page.waitForURL(/partition=tasks/);
  found = [await see('Materialized'), await see(id8), await see('files_to_sqlite_sync'), await see('created')];
  await settle();
  await page.screenshot({ path: shot(current) });
  report(current, found);

  // (c) The run page of the dispatcher's first run.
  current = 'run';
  await page.goto(`${cfg.baseUrl}/runs/${cfg.runId}`);
  found = [
    await see(id8),
    await see('Success'),
    await see('files_to_sqlite_sync'),
    await see('partition: tasks'),
    await see('files_to_sqlite'),
    await see('Succeeded (2)'),
    await see('Finished execution of run for "files_to_sqlite_sync".'),
  ];
  await settle();
  await page.screenshot({ path: shot(current) });
  report(current, found);
}
