import { expect, Page, test } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, logIn, open } from './helpers';

// What the first load of each page costs in wasm, as served (compressed, over the network,
// response headers included), in a browser with an empty cache; and that a second visit
// downloads no wasm at all. Pages are loaded lazily (`--split`): a first load fetches the main
// module (the frame: top bar, usage banner, router) and the chunks of the page shown, never the
// code of other pages. Each route has a budget, its measured figure plus about 4 % (at most the
// issue's target, 300 KB, where the route meets it), so this fails when a page grows; see the
// README for which routes meet the target.

/** A route, its first-load budget in bytes, and the page code (`split___<name>_route_view_…`
 *  files, see `lazy_pages!` in src/app.rs) it may load: its own and its layout's, nothing else. */
type Route = { path: string; budget: number; pages: string[] };

const VISITOR_ROUTES: Route[] = [
  { path: '/', budget: 216_000, pages: ['home'] },
  { path: '/login', budget: 253_000, pages: ['login'] },
  { path: '/signup', budget: 269_000, pages: ['signup'] },
  { path: '/signup/pending', budget: 209_000, pages: ['signup_pending'] },
  { path: '/pricing', budget: 281_000, pages: ['pricing'] },
];
const SIGNED_IN_ROUTES: Route[] = [
  { path: '/chat', budget: 401_000, pages: ['chat'] },
  { path: '/profile', budget: 268_000, pages: ['profile', 'profile_account'] },
  { path: '/profile/usage', budget: 349_000, pages: ['profile', 'profile_usage'] },
  // Over 300 KB since the bell and the forecast joined the main module (issue 16).
  { path: '/profile/tokens', budget: 307_000, pages: ['profile', 'profile_tokens'] },
  { path: '/notifications', budget: 289_000, pages: ['notifications'] },
  { path: '/admin', budget: 253_000, pages: ['admin', 'admin_overview'] },
  { path: '/admin/users', budget: 355_000, pages: ['admin', 'admin_users'] },
  { path: '/admin/usage', budget: 354_000, pages: ['admin', 'admin_usage'] },
  { path: '/admin/plans', budget: 300_000, pages: ['admin', 'admin_plans'] },
  { path: '/admin/jobs', budget: 365_000, pages: ['admin', 'admin_jobs'] },
];

/** Network bytes (encoded, headers included) of the wasm files `load` fetches, by Chromium's
 *  own accounting; files served from the browser's cache count 0. Also every console message
 *  of type error or warning. */
async function wasmTransferred(page: Page, load: () => Promise<void>) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const urls = new Map<string, string>();
  const pages = new Set<string>();
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
    const path = new URL(url, 'http://x').pathname;
    if (path.endsWith('.wasm')) {
      files += 1;
      const page = /\/split___(\w+?)_route_view_/.exec(path);
      if (page) pages.add(page[1]);
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
  return { bytes, files, problems, pages: [...pages].sort() };
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

async function measure(page: Page, { path, budget, pages }: Route, report: string[]) {
  const first = await wasmTransferred(page, () => open(page, path));
  expect(first.files, `${path} loads its code`).toBeGreaterThan(0);
  expect(first.problems, `${path}: no console errors or warnings`).toEqual([]);
  expect(first.pages, `${path} loads the code of its page and nothing else`).toEqual([...pages].sort());
  expect(first.bytes, `${path}: first-load wasm ${first.bytes} B, budget ${budget} B`).toBeLessThanOrEqual(budget);
  // Again in the same browser: the hashed files come from its cache.
  const again = await wasmTransferred(page, async () => {
    await page.goto(path);
  });
  expect(again.bytes, `${path}: a second visit transfers no wasm`).toBe(0);
  report.push(
    `weight: ${path} first load ${first.bytes} B of wasm (${first.files} file(s), budget ${budget} B), second visit ${again.bytes} B`,
  );
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

// The hashed files as served: precompressed, cached for a year, and with no header a cached
// file has no use for (a first load fetches a hundred of them; their headers count too).
test('a hashed file comes precompressed, cached for a year, with its headers kept short', async ({ page, request }) => {
  const wasm: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.endsWith('.wasm')) wasm.push(r.url());
  });
  await open(page, '/');
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
  expect(wasm.length).toBeGreaterThan(0);
  for (const [accepted, encoding] of [['br, gzip', 'br'], ['gzip', 'gzip']]) {
    const res = await request.get(wasm[0], { headers: { 'accept-encoding': accepted } });
    expect(res.status()).toBe(200);
    const headers = res.headers();
    expect(headers['content-encoding'], accepted).toBe(encoding);
    expect(headers['content-type']).toBe('application/wasm');
    expect(headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(headers['vary'], 'a shared cache keeps each encoding apart').toBe('accept-encoding');
    for (const unneeded of ['x-request-id', 'last-modified', 'accept-ranges']) {
      expect(headers[unneeded], `${unneeded} on a hashed file`).toBeUndefined();
    }
  }
  // Any other answer keeps its request id (the log's key to it).
  const healthz = await request.get('/healthz');
  expect(healthz.headers()['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
});
