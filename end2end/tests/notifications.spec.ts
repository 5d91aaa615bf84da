import { expect, test } from '@playwright/test';
import { adminApi, ADMIN_EMAIL, ADMIN_PASSWORD, logIn, open, setLimit, signUp, snap, uniqueEmail, userWithUsage } from './helpers';

test('at 79% one more message lights the bell without a reload; the list marks one and all read', async ({ page, baseURL }) => {
  const { id, used } = await userWithUsage(page, baseURL!, 'bell');
  const api = await adminApi(baseURL!);
  // 79 %: under the warning (the forecast may already have said something).
  await setLimit(api, id, Math.floor((used * 100) / 79));
  await open(page, '/chat');
  const bell = page.getByTestId('bell');
  await expect(bell).toBeVisible();
  /** The bell's unread count, from its label. */
  const unread = async () => Number(/(\d+) unread/.exec((await bell.getAttribute('aria-label')) ?? '')?.[1] ?? 0);
  const label = (n: number) => (n === 0 ? 'Notifications' : `Notifications, ${n} unread`);
  const before = await unread();
  await page.getByLabel('Message').fill('One more message');
  await page.getByLabel('Message').press('Enter');
  await expect(page.locator('[data-role="assistant"]').last()).toBeVisible();
  // Past 80 %: the bell counts one more, on the same page.
  await expect(bell).toHaveAttribute('aria-label', label(before + 1));
  await expect(page.getByTestId('bell-count')).toHaveText(String(Math.min(before + 1, 99)));
  await snap(page, 'bell-lit');

  await bell.click();
  await expect(page).toHaveURL(/\/notifications$/);
  const items = page.getByTestId('notification');
  await expect(items.first()).toHaveAttribute('data-read', 'false');
  await expect(items.first()).toHaveAttribute('data-kind', /^quota_(warning|upgrade|blocked)$/);
  await snap(page, 'notifications');
  await items.first().getByRole('button', { name: /^Mark .* as read$/ }).click();
  await expect(items.first()).toHaveAttribute('data-read', 'true');
  await expect(bell).toHaveAttribute('aria-label', label(before));
  await page.getByTestId('mark-all-read').click();
  await expect(bell).toHaveAttribute('aria-label', 'Notifications');
  await expect(page.getByTestId('bell-count')).toHaveCount(0);
  await expect(page.locator('[data-testid="notification"][data-read="false"]')).toHaveCount(0);
});

test('a new user has an empty list', async ({ page }) => {
  await signUp(page, uniqueEmail('bell-empty'));
  await open(page, '/notifications');
  await expect(page.getByTestId('no-notifications')).toBeVisible();
  await expect(page.getByTestId('bell')).toHaveAttribute('aria-label', 'Notifications');
});

test('the usage tab projects the month with the limit; the banner names the day', async ({ page, baseURL }) => {
  const { id, used } = await userWithUsage(page, baseURL!, 'bell');
  const api = await adminApi(baseURL!);
  // 40 % on the month's first days (or later): at this pace the limit comes before the reset,
  // unless the month is nearly over.
  await setLimit(api, id, Math.floor((used * 100) / 40));
  await open(page, '/profile/usage');
  const chart = page.getByTestId('month-projection');
  await expect(chart.getByTestId('projection-actual')).toBeAttached();
  await expect(chart.getByTestId('projection-limit')).toBeAttached();
  const usage = (await (await page.request.get('/api/profile/usage')).json()).data;
  await expect(chart.getByTestId('projection-caption')).toContainText('At this pace:');
  if (usage.forecast.limit_on) {
    await expect(page.getByTestId('usage-banner')).toHaveAttribute('data-level', 'forecast');
    await expect(page.getByTestId('usage-banner-text')).toHaveText(/^At this pace you reach your limit on \d{1,2} [A-Z][a-z]{2}\.$/);
    await expect(chart.getByTestId('projection-caption')).toContainText('the limit is reached on');
  }
  if (usage.period_end > new Date().toISOString().slice(0, 10)) {
    await expect(chart.getByTestId('projection-ahead')).toBeAttached();
  }
  await snap(page, 'usage-projection');
});

test("admins see each user's month at this pace and order the list by who runs out first", async ({ page, browser, baseURL }) => {
  const { id, used } = await userWithUsage(page, baseURL!, 'bell');
  const api = await adminApi(baseURL!);
  await setLimit(api, id, Math.floor((used * 100) / 40));
  const users = (await (await api.get('/api/admin/users')).json()).data;
  const me = users.find((u: { id: string }) => u.id === id);
  expect(me.projected_tokens).toBeGreaterThanOrEqual(used);
  const adminPage = await browser.newPage();
  await logIn(adminPage, ADMIN_EMAIL, ADMIN_PASSWORD);
  await open(adminPage, '/admin/users');
  const rows = adminPage.getByTestId('users-table').locator('tbody tr');
  await expect(rows.first().getByTestId('user-projection')).toContainText('at this pace');
  await adminPage.getByTestId('users-order').selectOption('runs_out');
  // Blocked users first, then by the day they run out: the first row is blocked or runs out.
  const first = rows.first();
  const blocked = await first.getByTestId('user-flag').filter({ hasText: 'blocked' }).count();
  if (blocked === 0) await expect(first.getByTestId('user-projection')).toContainText('runs out');
  await snap(adminPage, 'admin-users-projection');
  await adminPage.close();
});
