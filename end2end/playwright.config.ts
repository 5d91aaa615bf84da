import { defineConfig } from '@playwright/test';

// Browser tests against a real tokenmeter server (started below on a fresh SQLite database)
// in Debian's Chromium. `make test` builds the app first; the server is started here and
// Playwright waits for /healthz before the first test.
const port = Number(process.env.E2E_PORT ?? 3180);
// A second server behind the real LiteLLM peer (`make test` starts it), for the jobs page's
// usage sync; the first one runs the demo model.
const litellmPort = port + 1;
export const LITELLM_BASE_URL = `http://127.0.0.1:${litellmPort}`;

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 2,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: [
    {
      command: `bash ../scripts/e2e-server.sh ${port}`,
      url: `http://127.0.0.1:${port}/healthz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      // A third, whose sign-up waits for an admin's approval (the product's default).
      command: `TOKENMETER_SIGNUP=approval bash ../scripts/e2e-server.sh ${port + 2}`,
      url: `http://127.0.0.1:${port + 2}/healthz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      command: `E2E_LITELLM=1 bash ../scripts/e2e-server.sh ${litellmPort}`,
      url: `http://127.0.0.1:${litellmPort}/healthz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
  ],
});
