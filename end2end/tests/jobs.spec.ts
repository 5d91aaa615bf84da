import { expect, test } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, logIn, open, snap } from './helpers';

// The server behind the real LiteLLM peer (see playwright.config.ts).
const port = Number(process.env.E2E_PORT ?? 3180) + 1;
const base = `http://127.0.0.1:${port}`;
test.use({ baseURL: base });

async function logInAsAdmin(page: import('@playwright/test').Page) {
  await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
}

test('Sync usage now: a row appears and reaches 100% and completed without a reload', async ({ page }) => {
  await logInAsAdmin(page);
  await open(page, '/admin/jobs?type=usage_sync');
  await expect(page.getByTestId('jobs-live')).toHaveAttribute('data-mode', 'live');
  // Nothing reloads the page: a marker set now must survive until the end.
  await page.evaluate(() => ((window as any).__sameDocument = true));
  const rows = page.getByTestId('job-row');
  const before = await rows.evaluateAll((all) => all.map((r) => r.getAttribute('data-job-id')));
  // (Waits while the day's scheduled sync, enqueued when the server started, is under way.)
  await page.getByTestId('sync-usage-now').click();
  // The new job is the newest row, one not there before.
  const row = rows.first();
  await expect
    .poll(async () => before.includes(await row.getAttribute('data-job-id')), { timeout: 10_000 })
    .toBe(false);
  await expect(row).toHaveAttribute('data-status', 'completed', { timeout: 20_000 });
  await expect(row.getByTestId('job-progress')).toHaveText('100%');
  await expect(row.getByTestId('job-summary')).toContainText(/user\(s\) synced, \d+ day\(s\) with use, 0 failed/);
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
  // While it ran the button was off; now it is on again.
  await expect(page.getByTestId('sync-usage-now')).toBeEnabled();
  await snap(page, 'admin-jobs');
});

test('filters live in the URL, and a finished job cannot be cancelled', async ({ page }) => {
  await logInAsAdmin(page);
  await open(page, '/admin/jobs?status=completed');
  await expect(page.getByLabel('Status')).toHaveValue('completed');
  await page.getByLabel('Type').selectOption('report_generation');
  await expect(page).toHaveURL(/type=report_generation/);
  await expect(page).toHaveURL(/status=completed/);
  await page.getByLabel('Status').selectOption('');
  await expect(page).not.toHaveURL(/status=/);
  // A job made and finished now: its row names who asked and has no Cancel.
  const id = await finishedReport(page);
  await open(page, '/admin/jobs?type=report_generation&status=completed');
  const row = page.locator(`[data-job-id="${id}"]`);
  await expect(row).toHaveAttribute('data-status', 'completed');
  await expect(row.getByTestId('job-user')).toHaveText(`by ${ADMIN_EMAIL}`);
  await expect(row.getByTestId('job-cancel')).toHaveCount(0);
});

/** Asks for a report of today through the API and waits until it has completed; its id. */
async function finishedReport(page: import('@playwright/test').Page): Promise<string> {
  const today = new Date().toISOString().slice(0, 10);
  const res = await page.request.post('/api/admin/jobs/report', {
    headers: { Origin: base },
    data: { start_date: today, end_date: today },
  });
  expect(res.status()).toBe(202);
  const id = (await res.json()).data.id;
  await expect
    .poll(async () => (await (await page.request.get(`/api/admin/jobs/${id}`)).json()).data.status, {
      timeout: 20_000,
    })
    .toBe('completed');
  return id;
}

test('jobs come 50 a page, with Older and Newer kept in the URL', async ({ page }) => {
  await logInAsAdmin(page);
  await open(page, '/admin/jobs');
  const today = new Date().toISOString().slice(0, 10);
  for (let i = 0; i < 51; i++) {
    const res = await page.request.post('/api/admin/jobs/report', {
      headers: { Origin: base },
      data: { start_date: today, end_date: today },
    });
    expect(res.status()).toBe(202);
  }
  const total = (await (await page.request.get('/api/admin/jobs?type=report_generation')).json()).data.total;
  expect(total).toBeGreaterThan(50);
  await open(page, '/admin/jobs?type=report_generation');
  await expect(page.getByTestId('job-row')).toHaveCount(50);
  await expect(page.getByTestId('jobs-range')).toHaveText(new RegExp(`^Jobs 1–50 of \\d+$`));
  await expect(page.getByTestId('jobs-newer')).toHaveCount(0);
  await page.getByTestId('jobs-older').click();
  await expect(page).toHaveURL(/type=report_generation&offset=50/);
  await expect(page.getByTestId('jobs-range')).toHaveText(/^Jobs 51–\d+ of \d+$/);
  await expect(page.getByTestId('job-row').first()).toBeVisible();
  await page.getByTestId('jobs-newer').click();
  await expect(page).not.toHaveURL(/offset=/);
  await expect(page.getByTestId('job-row')).toHaveCount(50);
  // Another filter starts again at the newest jobs.
  await open(page, '/admin/jobs?type=report_generation&offset=50');
  await page.getByLabel('Status').selectOption('completed');
  await expect(page).toHaveURL(/status=completed/);
  await expect(page).not.toHaveURL(/offset=/);
});

test('at 375 px each job is a block and nothing overflows', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await logInAsAdmin(page);
  await finishedReport(page);
  await open(page, '/admin/jobs');
  const row = page.getByTestId('job-row').first();
  await expect(row).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBe(0);
  // The times sit under the job, not beside it.
  const box = await row.boundingBox();
  expect(box!.width).toBeLessThanOrEqual(375);
  await snap(page, 'admin-jobs-375');
});

test('a usage report is made in the background and downloaded from the page', async ({ page }) => {
  await logInAsAdmin(page);
  await open(page, '/admin/jobs?type=report_generation');
  const today = new Date().toISOString().slice(0, 10);
  await page.getByLabel('Report from').fill(today);
  await page.getByLabel('to', { exact: true }).fill(today);
  await page.getByTestId('make-report').click();
  const row = page.locator('[data-testid="job-row"][data-type="report_generation"]').first();
  await expect(row).toHaveAttribute('data-status', 'completed', { timeout: 20_000 });
  await expect(row.getByTestId('job-summary')).toContainText(`row(s), ${today} to ${today}`);
  const download = page.waitForEvent('download');
  await row.getByRole('link', { name: 'Download' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toBe(`usage-report-${today}-to-${today}.csv`);
  // Backwards: the server's message, no job.
  await page.getByLabel('Report from').fill(today);
  await page.getByLabel('to', { exact: true }).fill('2020-01-01');
  await page.getByTestId('make-report').click();
  await expect(page.getByText('must not be after end_date')).toBeVisible();
});

test.describe('without a LiteLLM proxy', () => {
  // The first e2e server: the demo model, nothing to sync from.
  test.use({ baseURL: `http://127.0.0.1:${port - 1}` });

  test('the page hydrates, says why there is no sync, and keeps the button off', async ({ page }) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await logInAsAdmin(page);
    await open(page, '/admin/jobs');
    await expect(page.getByTestId('sync-unavailable')).toHaveText(
      'No LiteLLM proxy here: usage is recorded by tokenmeter.',
    );
    await expect(page.getByTestId('sync-usage-now')).toBeDisabled();
    // Live, so hydrated: the page's script runs.
    await expect(page.getByTestId('jobs-live')).toHaveAttribute('data-mode', 'live');
    expect(errors).toEqual([]);
  });
});
