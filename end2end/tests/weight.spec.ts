import { expect, Page, test } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, logIn, open } from './helpers';

// What the first load of each page costs in wasm, as served (compressed, over the network), in
// a browser with an empty cache; and that a second visit downloads no wasm at all. The budget
// is what the first load of any route may transfer: the target is 300 KB (issue 14); until the
// pages load their code lazily every route loads the whole bundle, so the budget is today's
// figure plus a little, and this check fails when the bundle grows past it.
const WASM_BUDGET_BYTES = Number(process.env.WASM_BUDGET_BYTES ?? 720_000);

const VISITOR_ROUTES = ['/', '/login', '/signup', '/signup/pending', '/pricing'];
const SIGNED_IN_ROUTES = [
  '/chat',
  '/profile',
  '/profile/usage',
  '/profile/tokens',
  '/admin',
  '/admin/users',
  '/admin/usage',
  '/admin/plans',
  '/admin/jobs',
];

/** Network bytes (encoded, headers included) of the wasm files `load` fetches, by Chromium's
 *  own accounting; files served from the browser's cache count 0. Also every console message
 *  of type error or warning. */
async function wasmTransferred(page: Page, load: () => Promise<void>) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const urls = new Map<string, string>();
  const cached = new Set<string>();
  let bytes = 0;
  let files = 0;
  cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
  cdp.on('Network.requestServedFromCache', (e) => cached.add(e.requestId));
  cdp.on('Network.responseReceived', (e) => {
    if (e.response.fromDiskCache || e.response.fromPrefetchCache) cached.add(e.requestId);
  });
  cdp.on('Network.loadingFinished', (e) => {
    const url = urls.get(e.requestId) ?? '';
    if (new URL(url, 'http://x').pathname.endsWith('.wasm')) {
      files += 1;
      if (!cached.has(e.requestId)) bytes += e.encodedDataLength;
    }
  });
  const problems: string[] = [];
  const onConsole = (m: { type(): string; text(): string }) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  };
  page.on('console', onConsole);
  await load();
  // The wasm is fetched by the page's script: wait until the page says it hydrated.
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
  page.off('console', onConsole);
  await cdp.detach();
  return { bytes, files, problems };
}

for (const signedIn of [false, true]) {
  const routes = signedIn ? SIGNED_IN_ROUTES : VISITOR_ROUTES;
  test(`first load of every ${signedIn ? 'signed-in' : 'visitor'} page: wasm within the budget, a second visit downloads none`, async ({ browser }) => {
    test.setTimeout(120_000);
    // The admin's session, taken from a log-in in a context of its own (which loaded the
    // bundle already), then given to a fresh context per route.
    let cookies: Awaited<ReturnType<import('@playwright/test').BrowserContext['cookies']>> = [];
    if (signedIn) {
      const context = await browser.newContext();
      await logIn(await context.newPage(), ADMIN_EMAIL, ADMIN_PASSWORD);
      cookies = await context.cookies();
      await context.close();
    }
    const report: string[] = [];
    for (const route of routes) {
      // A new context per route: an empty cache, as a first visit.
      const context = await browser.newContext();
      await context.addCookies(cookies);
      await measure(await context.newPage(), route, report);
      await context.close();
    }
    console.log(report.join('\n'));
  });
}

async function measure(page: Page, route: string, report: string[]) {
  const first = await wasmTransferred(page, () => open(page, route));
  expect(first.files, `${route} loads its code`).toBeGreaterThan(0);
  expect(first.problems, `${route}: no console errors or warnings`).toEqual([]);
  expect(
    first.bytes,
    `${route}: first-load wasm ${first.bytes} B, budget ${WASM_BUDGET_BYTES} B`,
  ).toBeLessThanOrEqual(WASM_BUDGET_BYTES);
  // Again in the same browser: the hashed files come from its cache.
  const again = await wasmTransferred(page, async () => {
    await page.goto(route);
  });
  expect(again.bytes, `${route}: a second visit transfers no wasm`).toBe(0);
  report.push(`weight: ${route} first load ${first.bytes} B of wasm (${first.files} file(s)), second visit ${again.bytes} B`);
}

// Reached by client-side links instead of loaded: every signed-in page renders from the bundle
// already loaded, with no console error or warning and no further document load.
test('every page reached by a link renders without a console error or warning', async ({ page }) => {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
  let documents = 0;
  page.on('request', (r) => {
    if (r.resourceType() === 'document') documents += 1;
  });
  const banner = page.getByRole('navigation', { name: 'Main' });
  const admin = page.getByRole('navigation', { name: 'Admin' });
  const steps: [string, () => ReturnType<Page['getByRole']>, RegExp][] = [
    ['Chat', () => banner.getByRole('link', { name: 'Chat', exact: true }), /\/chat$/],
    ['Pricing', () => banner.getByRole('link', { name: 'Pricing', exact: true }), /\/pricing$/],
    ['Profile', () => banner.getByRole('link', { name: 'Profile', exact: true }), /\/profile$/],
    ['Usage tab', () => page.getByRole('main').getByRole('link', { name: 'Usage', exact: true }), /\/profile\/usage$/],
    ['API tokens tab', () => page.getByRole('main').getByRole('link', { name: 'API tokens', exact: true }), /\/profile\/tokens$/],
    ['Admin', () => banner.getByRole('link', { name: 'Admin', exact: true }), /\/admin$/],
    ['Users', () => admin.getByRole('link', { name: 'Users', exact: true }), /\/admin\/users$/],
    ['Usage', () => admin.getByRole('link', { name: 'Usage', exact: true }), /\/admin\/usage$/],
    ['Plans', () => admin.getByRole('link', { name: 'Plans', exact: true }), /\/admin\/plans$/],
    ['Jobs', () => admin.getByRole('link', { name: 'Jobs', exact: true }), /\/admin\/jobs$/],
    ['Overview', () => admin.getByRole('link', { name: 'Overview', exact: true }), /\/admin$/],
  ];
  for (const [name, link, url] of steps) {
    await link().click();
    await expect(page, `${name} reached`).toHaveURL(url);
    await expect(page.locator('main h1, main h2').first(), `${name} rendered`).toBeVisible();
  }
  expect(documents, 'no page was loaded anew: the router moved between them').toBe(0);
  expect(problems).toEqual([]);
});
