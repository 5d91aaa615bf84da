import { expect, Page } from '@playwright/test';

export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'admin-password-1';
export const PASSWORD = 'password-123';

/** A fresh address per call, so tests never collide. */
export function uniqueEmail(tag: string): string {
  return `${tag}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

/** Opens a page and waits until the wasm bundle has hydrated it. */
export async function open(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
}

export async function signUp(page: Page, email: string) {
  await open(page, '/signup');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByTestId('account-email')).toHaveText(email);
  // The profile's forms work only once it has hydrated (a click before posts without JS).
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
}

export async function logIn(page: Page, email: string, password = PASSWORD) {
  await open(page, '/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
}

/** Saves a screenshot for people to look at when SCREENSHOT_DIR is set. */
export async function snap(page: Page, name: string) {
  const dir = process.env.SCREENSHOT_DIR;
  if (dir) await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
}
