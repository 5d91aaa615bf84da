import { expect, test } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, logIn, open, signUp, snap, uniqueEmail } from './helpers';

test('sign up, see the profile, log out, log in again', async ({ page }) => {
  await open(page, '/');
  await snap(page, 'home-visitor');
  const email = uniqueEmail('ann');
  await signUp(page, email);
  await expect(page.getByRole('heading', { name: 'Profile' })).toBeVisible();
  await snap(page, 'profile-account');

  // Log out from the user menu.
  await page.getByTestId('user-menu').locator('summary').click();
  await page.getByTestId('user-menu').getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole('link', { name: 'Sign up' }).first()).toBeVisible();

  // Signed out, API tokens send us to log in, and back there afterwards.
  await open(page, '/profile/tokens');
  await expect(page).toHaveURL(/\/login\?next=%2Fprofile%2Ftokens$|\/login\?next=\/profile\/tokens$/);
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('password-123');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/profile\/tokens$/);
  await expect(page.getByRole('heading', { name: 'Your tokens' })).toBeVisible();

  await logIn(page, email);
  await expect(page.getByTestId('account-email')).toHaveText(email);
  await expect(page.getByRole('link', { name: 'Admin' })).toHaveCount(0);
});

test('a wrong password shows an error and keeps the visitor signed out', async ({ page }) => {
  await open(page, '/login');
  await page.getByLabel('Email').fill(uniqueEmail('nobody'));
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('wrong email or password');
  await expect(page).toHaveURL(/\/login$/);
  await snap(page, 'login-error');
});

test('a normal user cannot open /admin', async ({ page }) => {
  await signUp(page, uniqueEmail('bert'));
  await open(page, '/admin');
  await expect(page.getByRole('heading', { name: "You don't have access to this page" })).toBeVisible();
  await expect(page.getByTestId('users-table')).toHaveCount(0);
  await open(page, '/admin/users');
  await expect(page.getByRole('heading', { name: "You don't have access to this page" })).toBeVisible();
  await expect(page.getByTestId('users-table')).toHaveCount(0);
  await snap(page, 'admin-forbidden');
});

test('an admin manages users: adds one, makes them admin, disables them', async ({ page }) => {
  await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
  await page.getByRole('link', { name: 'Admin' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Users' }).click();
  await expect(page).toHaveURL(/\/admin\/users$/);

  const email = uniqueEmail('cleo');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('password-123');
  await page.getByRole('button', { name: 'Add user' }).click();
  const row = page.getByTestId('users-table').locator('tr', { hasText: email });
  await expect(row).toBeVisible();
  await expect(page.getByLabel('Email')).toHaveValue('');

  await row.getByLabel(`Role of ${email}`).selectOption('admin');
  await expect(row.getByLabel(`Role of ${email}`)).toHaveValue('admin');
  await row.getByRole('button', { name: 'Disable' }).click();
  await expect(page.getByTestId('users-table').locator('tr', { hasText: email }).getByText('disabled')).toBeVisible();
  await snap(page, 'admin-users');

  // The admin's own row cannot be demoted or disabled from here.
  const mine = page.getByTestId('users-table').locator('tr', { hasText: ADMIN_EMAIL });
  await expect(mine.getByRole('button', { name: 'Disable' })).toBeDisabled();
});

test('API tokens: the secret is shown once and a revoked token disappears', async ({ page }) => {
  await signUp(page, uniqueEmail('dora'));
  await page.getByRole('navigation', { name: 'Profile' }).getByRole('link', { name: 'API tokens' }).click();
  await expect(page).toHaveURL(/\/profile\/tokens$/);
  await page.getByLabel('Name').fill('laptop script');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = page.getByTestId('new-token-secret');
  await expect(secret).toHaveText(/^tm_/);
  await expect(page.getByLabel('Name')).toHaveValue('');
  const list = page.getByTestId('token-list');
  await expect(list.getByText('laptop script')).toBeVisible();
  await snap(page, 'profile-tokens');

  // The token works against the REST API, then stops working once revoked.
  const token = (await secret.textContent())!.trim();
  const me = await page.request.get('/api/auth/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(me.status()).toBe(200);

  await list.getByRole('button', { name: 'Revoke laptop script' }).click();
  await expect(page.getByText('No tokens yet.')).toBeVisible();
  const after = await page.request.get('/api/auth/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(after.status()).toBe(401);
});

test('the layout fits a 375 px wide screen', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await open(page, '/');
  let width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(375);
  await snap(page, 'mobile-home');
  await signUp(page, uniqueEmail('eve'));
  width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(375);
  await snap(page, 'mobile-profile');

  // The widest page: the admin's user table scrolls inside its card, the page does not.
  await page.context().clearCookies();
  await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
  await open(page, '/admin/users');
  await expect(page.getByTestId('users-table')).toBeVisible();
  width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(375);
  await snap(page, 'mobile-admin-users');
});

test('an unknown address shows the 404 page', async ({ page }) => {
  const res = await page.goto('/no/such/page');
  expect(res?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
});

test('changing the password: the old one stops working, the new one works', async ({ page }) => {
  const email = uniqueEmail('fay');
  await signUp(page, email);
  await page.getByLabel('Current password').fill('password-123');
  await page.getByLabel('New password').fill('brand-new-pass');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByRole('status')).toContainText('Password changed');
  await expect(page.getByLabel('Current password')).toHaveValue('');
  await snap(page, 'profile-password-changed');

  await page.getByTestId('user-menu').locator('summary').click();
  await page.getByTestId('user-menu').getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  // A full page load: wait until it can act on a click (or the form posts without JS).
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('password-123');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('wrong email or password');
  await logIn(page, email, 'brand-new-pass');
});

test('times are shown in the configured zone, the same from the server and from the browser', async ({ page }) => {
  await signUp(page, uniqueEmail('zone'));
  // Rendered by the server (sign-up ends in a full page load).
  const since = page.getByTestId('member-since');
  await expect(since).toHaveText(/^\d{4}-\d\d-\d\d \d\d:\d\d \+05:30$/);
  const fromServer = (await since.textContent())!;
  const me = await (await page.request.get('/api/auth/me')).json();
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: 'Asia/Kolkata', hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit',
    }).formatToParts(new Date(me.data.created_at)).map((p) => [p.type, p.value]),
  );
  expect(fromServer).toBe(`${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} +05:30`);

  // Rendered by the browser: to the tokens tab and back without a page load.
  const tabs = page.getByRole('navigation', { name: 'Profile' });
  await tabs.getByRole('link', { name: 'API tokens' }).click();
  await page.getByLabel('Name').fill('zone check');
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.getByTestId('token-list')).toContainText(/created \d{4}-\d\d-\d\d \d\d:\d\d \+05:30 · last used never/);
  await tabs.getByRole('link', { name: 'Account' }).click();
  await expect(page.getByTestId('member-since')).toHaveText(fromServer);
});
