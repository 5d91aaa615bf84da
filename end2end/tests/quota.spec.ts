import { expect, test } from '@playwright/test';
import { adminApi, ADMIN_EMAIL, ADMIN_PASSWORD, logIn, open, setLimit, signUp, snap, uniqueEmail, userWithUsage } from './helpers';

test('at 85% an amber banner; dismissed it stays away until a reload', async ({ page, baseURL }) => {
  const { id, used } = await userWithUsage(page, baseURL!, 'quota');
  const api = await adminApi(baseURL!);
  await setLimit(api, id, Math.floor((used * 100) / 85));
  await open(page, '/chat');
  const banner = page.getByTestId('usage-banner');
  await expect(banner).toHaveAttribute('data-level', 'warning');
  await expect(page.getByTestId('usage-banner-text')).toHaveText(/^You've used 85(\.\d+)?% of your monthly quota$/);
  await expect(banner.getByRole('progressbar')).toBeVisible();
  await expect(banner.getByRole('link', { name: 'Upgrade' })).toHaveAttribute('href', '/pricing');
  await expect(banner).toContainText('resets on');
  await snap(page, 'banner-85');
  await banner.getByRole('button', { name: 'Dismiss' }).click();
  await expect(banner).toHaveCount(0);
  await page.reload();
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
  await expect(page.getByTestId('usage-banner')).toBeVisible();
});

test('at 96% the banner suggests upgrading', async ({ page, baseURL }) => {
  const { id, used } = await userWithUsage(page, baseURL!, 'quota');
  const api = await adminApi(baseURL!);
  await setLimit(api, id, Math.floor((used * 100) / 96));
  await open(page, '/profile');
  await expect(page.getByTestId('usage-banner')).toHaveAttribute('data-level', 'upgrade');
  await expect(page.getByTestId('usage-banner-text')).toHaveText("You're almost at your limit. Upgrade for more tokens.");
  await snap(page, 'banner-96');
});

test('at 100% Send opens the dialog, nothing is sent, and the text is kept', async ({ page, baseURL }) => {
  const { id, used } = await userWithUsage(page, baseURL!, 'quota');
  const api = await adminApi(baseURL!);
  await setLimit(api, id, used);
  await open(page, '/chat');
  await expect(page.getByTestId('usage-banner-text')).toHaveText("You've reached your limit. Upgrade to continue.");
  await expect(page.getByTestId('model-picker')).toHaveValue('demo');
  const composer = page.getByLabel('Message');
  await composer.fill('One more, please');
  await composer.press('Enter');
  const dialog = page.getByRole('dialog', { name: "You've reached your monthly token limit" });
  await expect(dialog).toBeVisible();
  await expect(dialog).toHaveAttribute('aria-modal', 'true');
  await expect(dialog.getByRole('link', { name: 'Upgrade Plan' })).toBeFocused();
  await snap(page, 'quota-modal');
  // Esc and the backdrop leave it open; focus stays inside.
  await page.keyboard.press('Escape');
  await expect(dialog).toBeVisible();
  await page.getByTestId('modal-backdrop').click({ position: { x: 5, y: 5 }, force: true });
  await expect(dialog).toBeVisible();
  await page.keyboard.press('Tab');
  await expect(dialog.getByRole('button', { name: 'Close' })).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(dialog.getByRole('link', { name: 'Upgrade Plan' })).toBeFocused();
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toHaveCount(0);
  await expect(composer).toHaveValue('One more, please');
  await expect(page.locator('[data-testid="message"]')).toHaveCount(0);
  // The server refuses as well, and stored nothing.
  const usage = await (await page.request.get('/api/profile/usage')).json();
  expect(usage.data.tokens_used).toBe(used);
  const list = await (await page.request.get('/api/conversations')).json();
  expect(list.data.length).toBe(1);
});

test('a 429 from the server opens the dialog too', async ({ page, baseURL }) => {
  const { id, used } = await userWithUsage(page, baseURL!, 'quota');
  await open(page, '/chat');
  await expect(page.getByTestId('model-picker')).toHaveValue('demo');
  // Blocked after the page loaded its usage: only the server knows.
  const api = await adminApi(baseURL!);
  await setLimit(api, id, used);
  await page.getByLabel('Message').fill('Sneaking one in');
  await page.getByLabel('Message').press('Enter');
  await expect(page.getByRole('dialog')).toBeVisible();
  await expect(page.getByLabel('Message')).toHaveValue('Sneaking one in');
  await expect(page.locator('[data-role="assistant"]')).toHaveCount(0);
});

test('pricing lists the plans, marks the current one, and takes a request', async ({ page, baseURL }) => {
  await signUp(page, uniqueEmail('pricing'));
  await open(page, '/pricing');
  const plans = page.getByTestId('plan');
  // The seeded three (another test may add more).
  for (const name of ['Free', 'Pro', 'Team']) {
    await expect(plans.filter({ has: page.getByRole('heading', { name, exact: true }) })).toHaveCount(1);
  }
  const free = plans.filter({ has: page.getByRole('heading', { name: 'Free', exact: true }) });
  await expect(free.getByTestId('current-plan')).toBeVisible();
  await expect(free).toContainText('100,000 tokens a month');
  const pro = plans.filter({ has: page.getByRole('heading', { name: 'Pro', exact: true }) });
  await pro.getByRole('button', { name: 'Ask for this plan' }).click();
  await expect(page.getByTestId('plan-requested')).toBeVisible();
  await snap(page, 'pricing');
  // The admin sees the request on the users page.
  const adminPage = await page.context().browser()!.newPage();
  await logIn(adminPage, ADMIN_EMAIL, ADMIN_PASSWORD);
  await open(adminPage, '/admin/users');
  await expect(adminPage.getByTestId('plan-request').first()).toContainText('asks for Pro');
  await snap(adminPage, 'admin-users-quota');
  await adminPage.close();
});

test('an admin edits a plan and adds one; the pricing page shows them', async ({ page }) => {
  await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
  await open(page, '/admin/plans');
  const forms = page.getByTestId('plan-form');
  const team = forms.filter({ has: page.getByRole('heading', { name: 'Team', exact: true }) });
  await team.getByLabel('Description').fill('For whole teams.');
  // One action saves every form and the list is read again after it: wait for both before
  // filling the next form, or the re-read list replaces it under the typing.
  const saved = page.waitForResponse((r) => r.url().includes('/api/fn/admin_save_plan'));
  const reread = page.waitForResponse((r) => r.url().includes('/api/fn/list_plans'));
  await team.getByRole('button', { name: 'Save' }).click();
  await saved;
  await reread;
  const name = `Gold ${Date.now()}`;
  const fresh = forms.last();
  await fresh.getByLabel('Name').fill(name);
  await fresh.getByLabel('Tokens a month').fill('50,000,000');
  await fresh.getByLabel('Price label').fill('$400 / month');
  await fresh.getByLabel('Order').fill('9');
  await fresh.getByRole('button', { name: 'Add plan' }).click();
  await expect(page.getByRole('heading', { name })).toBeVisible();
  // The new-plan form is empty again, ready for the next one.
  await expect(forms.last().getByRole('heading', { name: 'New plan' })).toBeVisible();
  await expect(forms.last().getByLabel('Name')).toHaveValue('');
  await expect(forms.last().getByLabel('Tokens a month')).toHaveValue('');
  await snap(page, 'admin-plans');
  await open(page, '/pricing');
  await expect(page.getByTestId('plan').filter({ hasText: name })).toContainText('50,000,000 tokens a month');
  await expect(
    page.getByTestId('plan').filter({ has: page.getByRole('heading', { name: 'Team', exact: true }) }),
  ).toContainText('For whole teams.');
});
