import { expect, test } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, logIn, open, snap, uniqueEmail } from './helpers';

// The server whose sign-up waits for an admin (see playwright.config.ts).
const port = Number(process.env.E2E_PORT ?? 3180) + 2;
test.use({ baseURL: `http://127.0.0.1:${port}` });

test('a sign-up waits for approval; the admin approves it from the users list; then it signs in', async ({
  browser,
}) => {
  const email = uniqueEmail('waiting');
  const visitor = await browser.newPage();
  await open(visitor, '/signup');
  await expect(visitor.locator('#approval-note')).toContainText('An admin approves new accounts');
  await visitor.getByLabel('Email').fill(email);
  await visitor.getByLabel('Password').fill(PASSWORD);
  await visitor.getByRole('button', { name: 'Create account' }).click();
  await expect(visitor).toHaveURL(/\/signup\/pending$/);
  await expect(visitor.getByRole('heading', { name: 'Waiting for approval' })).toBeVisible();
  await snap(visitor, 'signup-pending');

  // Not in yet: the log-in says why.
  await open(visitor, '/login');
  await visitor.getByLabel('Email').fill(email);
  await visitor.getByLabel('Password').fill(PASSWORD);
  await visitor.getByRole('button', { name: 'Log in' }).click();
  await expect(visitor.getByText("waiting for an admin's approval")).toBeVisible();
  await expect(visitor).toHaveURL(/\/login/);

  // The admin finds the account at the top of the list and approves it.
  const admin = await browser.newPage();
  await logIn(admin, ADMIN_EMAIL, ADMIN_PASSWORD);
  await open(admin, '/admin/users');
  const row = admin.locator('tr', { hasText: email });
  await expect(admin.locator('tbody tr').first()).toContainText(email);
  await expect(row.getByTestId('pending-badge')).toHaveText('waiting for approval');
  await snap(admin, 'admin-users-pending');
  await row.getByRole('button', { name: 'Approve' }).click();
  await expect(row.getByTestId('pending-badge')).toHaveCount(0);
  await expect(row).toContainText('active');

  await logIn(visitor, email);
  await expect(visitor.getByTestId('account-email')).toHaveText(email);
  await expect(visitor.getByLabel('Also revoke my API tokens')).not.toBeChecked();
  await snap(visitor, 'profile-after-approval');
});

test('a rejected sign-up cannot sign in', async ({ browser }) => {
  const email = uniqueEmail('rejected');
  const visitor = await browser.newPage();
  await open(visitor, '/signup');
  await visitor.getByLabel('Email').fill(email);
  await visitor.getByLabel('Password').fill(PASSWORD);
  await visitor.getByRole('button', { name: 'Create account' }).click();
  await expect(visitor).toHaveURL(/\/signup\/pending$/);

  const admin = await browser.newPage();
  await logIn(admin, ADMIN_EMAIL, ADMIN_PASSWORD);
  await open(admin, '/admin/users');
  const row = admin.locator('tr', { hasText: email });
  await row.getByRole('button', { name: 'Reject' }).click();
  await expect(row).toContainText('rejected');

  await open(visitor, '/login');
  await visitor.getByLabel('Email').fill(email);
  await visitor.getByLabel('Password').fill(PASSWORD);
  await visitor.getByRole('button', { name: 'Log in' }).click();
  await expect(visitor.getByText('did not approve')).toBeVisible();
});
