// Smoke test, no Tickmesh server: Debian's Chromium launches, and the built
// page (frontend/dist/app, served by a tiny static server) renders with the
// "connecting" banner, since nothing answers on /ws.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { expect, test } from '@playwright/test';
import { FRONTEND_DIR } from './cluster';

const APP = join(FRONTEND_DIR, 'dist', 'app');
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

let server: Server;
let base: string;

test.beforeAll(async () => {
  if (!existsSync(join(APP, 'index.html'))) {
    execFileSync(join(FRONTEND_DIR, 'node_modules', '.bin', 'vite'), ['build'], { cwd: FRONTEND_DIR, stdio: 'inherit' });
  }
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(APP, path === '/' ? 'index.html' : path));
    if (!file.startsWith(APP) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  // No WebSocket here: upgrade requests are refused.
  server.on('upgrade', (_req, socket) => socket.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise((r) => server.close(r));
});

test('the built game page renders the connecting banner without a server', async ({ page, browser }, testInfo) => {
  expect(browser.version()).toBeTruthy();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/?name=smoke&room=lobby`);

  const banner = page.getByTestId('status-banner');
  await expect(banner).toBeVisible();
  await expect(banner).toHaveText(/connecting/i);
  await expect(banner).toHaveAttribute('data-kind', 'connecting');
  await expect(page.getByTestId('status-state')).toHaveText('connecting');
  await expect(page.getByTestId('game-canvas')).toBeVisible();
  // The client keeps retrying (and says so).
  await expect(page.getByTestId('status-attempt')).not.toHaveText(/^(0|—)$/, { timeout: 10_000 });

  const state = await page.evaluate(() => ({
    state: window.__tickmesh.state,
    player: window.__tickmesh.player,
    epoch: window.__tickmesh.epoch,
    lastSeq: window.__tickmesh.lastSeq,
    me: window.__tickmesh.me,
    players: window.__tickmesh.players,
  }));
  expect(state).toEqual({ state: 'connecting', player: '', epoch: -1, lastSeq: -1, me: null, players: 0 });
  // The hook is read-only.
  expect(await page.evaluate(() => {
    try {
      (window as unknown as { __tickmesh: unknown }).__tickmesh = null;
    } catch {
      /* strict mode */
    }
    return window.__tickmesh !== null && (window.__tickmesh as unknown as Record<string, unknown>)['state'] !== undefined;
  })).toBe(true);

  // The canvas was drawn (background colour, not transparent).
  const px = await page.evaluate(() => {
    const c = document.getElementById('game') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data;
    return [d[0], d[1], d[2], d[3]];
  });
  expect(px).toEqual([0x0e, 0x11, 0x16, 255]);

  await page.screenshot({ path: testInfo.outputPath('connecting.png') });
  expect(errors).toEqual([]);
});

test('the built cluster page shows that /api/cluster is unreachable', async ({ page }, testInfo) => {
  await page.goto(`${base}/cluster.html`);
  const status = page.getByTestId('cluster-status');
  await expect(status).toHaveAttribute('data-state', 'failing');
  await expect(status).toContainText('HTTP 404');
  await page.screenshot({ path: testInfo.outputPath('cluster-failing.png') });
});
