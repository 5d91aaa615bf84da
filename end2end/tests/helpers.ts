import { APIRequestContext, expect, Page, request } from '@playwright/test';

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

/** An API client signed in as the admin. */
export async function adminApi(baseURL: string): Promise<APIRequestContext> {
  const api = await request.newContext({ baseURL, extraHTTPHeaders: { Origin: baseURL } });
  const res = await api.post('/api/auth/login', { data: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
  expect(res.status()).toBe(200);
  return api;
}

/** Signs up (the address tagged `tag`), chats once with the demo model, and returns the
 *  user's id and tokens used. */
export async function userWithUsage(page: Page, baseURL: string, tag: string): Promise<{ id: string; used: number }> {
  await signUp(page, uniqueEmail(tag));
  const sent = await page.request.post('/api/chat/completions', {
    headers: { Origin: baseURL },
    data: { model: 'demo', messages: [{ role: 'user', content: 'count these tokens' }] },
  });
  expect(sent.status()).toBe(200);
  const me = await (await page.request.get('/api/auth/me')).json();
  const usage = await (await page.request.get('/api/profile/usage')).json();
  return { id: me.data.id, used: usage.data.tokens_used };
}

/** Sets a user's personal monthly limit. */
export async function setLimit(api: APIRequestContext, id: string, limit: number) {
  const res = await api.patch(`/api/admin/users/${id}`, { data: { token_limit_override: limit } });
  expect(res.status()).toBe(200);
}
