import { defineConfig } from '@playwright/test';

// Never download a browser: Debian's Chromium is used through executablePath.
// (Install with PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1; @playwright/test 1.x does
// not download browsers on npm install anyway.)
export const chromiumLaunchOptions = {
  executablePath: process.env['TICKMESH_CHROMIUM'] ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env['CI'],
  timeout: 90_000,
  expect: { timeout: 10_000 },
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    browserName: 'chromium',
    headless: true,
    launchOptions: chromiumLaunchOptions,
    viewport: { width: 1000, height: 700 },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
  },
  projects: [
    // No Tickmesh node needed: the built page against a static server
    // (browser.spec.ts) or a fake node (client.spec.ts).
    { name: 'smoke', testMatch: /(browser|client)\.spec\.ts$/ },
    // "Global setup" as project dependencies, so that the smoke spec alone
    // does not need the node binary.
    { name: 'cluster-setup', testMatch: /cluster\.setup\.ts$/, teardown: 'cluster-teardown' },
    { name: 'cluster-teardown', testMatch: /cluster\.teardown\.ts$/ },
    { name: 'cluster', testMatch: /(game|clusterview)\.spec\.ts$/, dependencies: ['cluster-setup'] },
    // Prediction, interpolation and the net graph (netcode.spec.ts), and the
    // keydown -> movement benchmark (latency.spec.ts), on the same cluster.
    { name: 'netcode', testMatch: /(netcode|latency)\.spec\.ts$/, dependencies: ['cluster-setup'] },
  ],
});
