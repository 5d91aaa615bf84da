import { expect, test } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, logIn, open, snap } from './helpers';

// The server behind the real LiteLLM peer (see playwright.config.ts).
const port = Number(process.env.E2E_PORT ?? 3180) + 1;
test.use({ baseURL: `http://127.0.0.1:${port}` });

async function logInAsAdmin(page: import('@playwright/test').Page) {
  await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
}

test('Sync usage now: a row appears and reaches 100% and completed without a reload', async ({ page }) => {
  await logInAsAdmin(page);
  await open(page, '/admin/jobs');
  await expect(page.getByTestId('jobs-live')).toHaveAttribute('data-mode', 'live');
  // Nothing reloads the page: a marker set now must survive until the end.
  await page.evaluate(() => ((window as any).__sameDocument = true));
  const before = await page.getByTestId('job-row').count();
  await page.getByTestId('sync-usage-now').click();
  const row = page.locator('[data-testid="job-row"][data-type="usage_sync"]').first();
  await expect(page.getByTestId('job-row')).toHaveCount(before + 1);
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
  const res = await page.request.get('/api/admin/jobs?type=usage_sync&status=completed');
  const done = (await res.json()).data.jobs;
  if (done.length > 0) {
    await open(page, '/admin/jobs?type=usage_sync&status=completed');
    await expect(page.locator(`[data-job-id="${done[0].id}"]`).getByTestId('job-cancel')).toHaveCount(0);
  }
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
