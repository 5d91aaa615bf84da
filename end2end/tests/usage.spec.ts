import { expect, Page, test } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, logIn, open, signUp, snap, uniqueEmail } from './helpers';

/** Signs up and chats `times` times with the demo model; returns the id and today's tokens. */
async function userWhoChatted(page: Page, baseURL: string, times: number) {
  const email = uniqueEmail('usage');
  await signUp(page, email);
  for (let i = 0; i < times; i++) {
    const sent = await page.request.post('/api/chat/completions', {
      headers: { Origin: baseURL },
      data: { model: 'demo', messages: [{ role: 'user', content: `question number ${i}` }] },
    });
    expect(sent.status()).toBe(200);
  }
  const me = await (await page.request.get('/api/auth/me')).json();
  const history = await (await page.request.get('/api/profile/usage/history?days=30')).json();
  const today = history.data.daily[29];
  return { email, id: me.data.id as string, today };
}

const grouped = (n: number) => n.toLocaleString('en-US');

test('the Usage tab charts the days; metrics switch; the tooltip has the exact values', async ({ page, baseURL }) => {
  const { today } = await userWhoChatted(page, baseURL!, 2);
  expect(today.requests_count).toBe(2);
  await open(page, '/profile/usage');
  const chart = page.getByTestId('usage-chart');
  const bars = chart.getByTestId('usage-bar');
  await expect(bars).toHaveCount(30);
  const last = bars.last();
  await expect(last).toHaveAttribute('data-date', today.date);
  await expect(last).toHaveAttribute('data-value', String(today.tokens_used));
  await expect(page.getByTestId('usage-totals')).toContainText(grouped(today.tokens_used));
  await expect(page.getByTestId('usage-models')).toContainText('demo');
  await expect(page.getByTestId('quota-card')).toContainText('Free plan');

  // Hover: the exact values.
  await last.hover();
  const tooltip = page.getByTestId('usage-chart-tooltip');
  await expect(tooltip).toContainText(today.date);
  await expect(tooltip).toContainText(`${grouped(today.tokens_used)} tokens`);
  await expect(tooltip).toContainText('2 requests');
  await snap(page, 'usage-tab-tooltip');

  // Requests: the bars change.
  await chart.getByTestId('metric-requests').click();
  await expect(chart).toHaveAttribute('data-metric', 'requests');
  await expect(last).toHaveAttribute('data-value', '2');
  await expect(page.getByTestId('usage-chart-max')).toHaveText('2 requests');
  await chart.getByTestId('metric-cost').click();
  await expect(last).toHaveAttribute('data-value', '0');

  // Keyboard: the chart is one tab stop; arrows move between days, each with its tooltip.
  await chart.getByTestId('metric-tokens').click();
  await page.mouse.move(0, 0);
  await last.focus();
  await expect(tooltip).toContainText(today.date);
  await page.keyboard.press('ArrowLeft');
  const before = await bars.nth(28).getAttribute('data-date');
  await expect(bars.nth(28)).toBeFocused();
  await expect(tooltip).toContainText(before!);
  await expect(tooltip).toContainText('0 tokens');
  await page.keyboard.press('Home');
  await expect(bars.first()).toBeFocused();

  // The table says the same.
  await page.getByText('Show as a table').click();
  const row = page.getByTestId('usage-table').getByRole('row', { name: new RegExp(today.date) });
  await expect(row).toContainText(grouped(today.tokens_used));

  // Other ranges.
  await page.getByTestId('range-7').click();
  await expect(bars).toHaveCount(7);
  await expect(page.getByTestId('usage-csv')).toHaveAttribute('href', '/api/profile/usage/history?days=7&format=csv');
});

test('a user without use sees the empty state; the tab fits 375 px', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await signUp(page, uniqueEmail('empty'));
  await open(page, '/profile/usage');
  await expect(page.getByTestId('usage-chart-empty')).toHaveText('No usage in these 30 days yet.');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await snap(page, 'usage-tab-empty-375');
});

test('the chart is readable at 375 px', async ({ page, baseURL }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await userWhoChatted(page, baseURL!, 1);
  await open(page, '/profile/usage');
  await expect(page.getByTestId('usage-bar')).toHaveCount(30);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.getByTestId('usage-bar').last().hover();
  const box = await page.getByTestId('usage-chart-tooltip').boundingBox();
  expect(box!.x).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width).toBeLessThanOrEqual(375);
  await snap(page, 'usage-tab-375');
});

test("an admin opens another user's history; a user cannot", async ({ page, baseURL, browser }) => {
  const { email, id, today } = await userWhoChatted(page, baseURL!, 1);
  // The user: the admin page and the admin API are closed to them.
  const denied = await page.request.get(`/api/admin/users/${id}/usage/history`);
  expect(denied.status()).toBe(403);
  await open(page, `/admin/users/${id}`);
  await expect(page.getByTestId('usage-chart')).toHaveCount(0);

  const adminPage = await browser.newPage();
  await logIn(adminPage, ADMIN_EMAIL, ADMIN_PASSWORD);
  await open(adminPage, '/admin/users');
  await adminPage.getByRole('link', { name: email }).click();
  await expect(adminPage).toHaveURL(new RegExp(`/admin/users/${id}$`));
  await expect(adminPage.getByTestId('user-detail-email')).toHaveText(email);
  await expect(adminPage.getByTestId('usage-bar').last()).toHaveAttribute('data-value', String(today.tokens_used));
  await expect(adminPage.getByTestId('quota-card')).toContainText(grouped(today.tokens_used));
  // No LiteLLM behind this server: nothing to sync from, and the page says so.
  await expect(adminPage.getByTestId('no-sync')).toBeVisible();
  await expect(adminPage.getByTestId('sync-now')).toHaveCount(0);
  await expect(adminPage.getByTestId('usage-sync-state')).toHaveText('Recorded by tokenmeter');
  // Loaded directly (rendered on the server, then hydrated): the same page.
  await open(adminPage, `/admin/users/${id}`);
  await expect(adminPage.getByTestId('user-detail-email')).toHaveText(email);
  await expect(adminPage.getByTestId('no-sync')).toBeVisible();
  await expect(adminPage.getByTestId('usage-bar').last()).toHaveAttribute('data-value', String(today.tokens_used));
  await snap(adminPage, 'admin-user-detail');
  await adminPage.close();
});

test('admins see everyone on /admin/usage, over a range they pick', async ({ page, baseURL, browser }) => {
  const { email, today } = await userWhoChatted(page, baseURL!, 3);
  const adminPage = await browser.newPage();
  await logIn(adminPage, ADMIN_EMAIL, ADMIN_PASSWORD);
  await open(adminPage, '/admin/usage');
  const bars = adminPage.getByTestId('usage-bar');
  await expect(bars).toHaveCount(30);
  // Everyone's today is at least this user's.
  const todayAll = Number(await bars.last().getAttribute('data-value'));
  expect(todayAll).toBeGreaterThanOrEqual(today.tokens_used);
  await expect(adminPage.getByTestId('top-users')).toContainText(email);
  await expect(adminPage.getByTestId('usage-models')).toContainText('demo');
  await expect(adminPage.getByLabel('To', { exact: true })).toHaveValue(today.date);
  await snap(adminPage, 'admin-usage');

  await adminPage.getByTestId('preset-7').click();
  await expect(bars).toHaveCount(7);
  // A range of its own: the two days before today and today.
  const to = new Date(`${today.date}T00:00:00Z`);
  const day = (n: number) => new Date(to.getTime() - n * 86400000).toISOString().slice(0, 10);
  await adminPage.getByLabel('From', { exact: true }).fill(day(2));
  await adminPage.getByRole('button', { name: 'Show' }).click();
  await expect(bars).toHaveCount(3);
  await expect(bars.last()).toHaveAttribute('data-date', today.date);
  await expect(adminPage.getByTestId('usage-csv')).toHaveAttribute('href', `/api/admin/usage?from=${day(2)}&to=${today.date}&format=csv`);
  // Days before anyone used anything: the empty state.
  await adminPage.getByLabel('From', { exact: true }).fill(day(3));
  await adminPage.getByLabel('To', { exact: true }).fill(day(1));
  await adminPage.getByRole('button', { name: 'Show' }).click();
  await expect(adminPage.getByText(`Everyone, ${day(3)} to ${day(1)}`)).toBeVisible();
  // A backwards range: the server says what is wrong.
  await adminPage.getByLabel('From', { exact: true }).fill(day(1));
  await adminPage.getByLabel('To', { exact: true }).fill(day(3));
  await adminPage.getByRole('button', { name: 'Show' }).click();
  await expect(adminPage.getByText('must not be after')).toBeVisible();
  await adminPage.close();
});
