// The built client against a fake node (e2e/fakenode.ts): protocol wiring,
// rendering, input, reconnect with resume, and the 45xx close codes, in a real
// browser but without the Go binary.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page, type TestInfo } from '@playwright/test';
import { FRONTEND_DIR } from './cluster';
import { FakeNode } from './fakenode';

const APP = join(FRONTEND_DIR, 'dist', 'app');
let node: FakeNode;

test.beforeAll(() => {
  if (!existsSync(join(APP, 'index.html'))) {
    execFileSync(join(FRONTEND_DIR, 'node_modules', '.bin', 'vite'), ['build'], { cwd: FRONTEND_DIR, stdio: 'inherit' });
  }
});

test.beforeEach(async () => {
  node = new FakeNode(APP);
  await node.start();
});

test.afterEach(async () => {
  await node.stop();
});

async function state(page: Page) {
  return page.evaluate(() => ({
    state: window.__tickmesh.state,
    player: window.__tickmesh.player,
    node: window.__tickmesh.node,
    me: window.__tickmesh.me,
    players: window.__tickmesh.players,
    lastSeq: window.__tickmesh.lastSeq,
  }));
}

async function connected(page: Page): Promise<void> {
  await expect.poll(async () => (await state(page)).state === 'connected' && (await state(page)).me !== null).toBe(true);
}

async function redNearMe(page: Page): Promise<number> {
  return page.evaluate(() => {
    const me = window.__tickmesh.me;
    if (me === null) return 0;
    const c = document.getElementById('game') as HTMLCanvasElement;
    const p = window.__tickmesh.toCanvas(me.x, me.y);
    const d = c.getContext('2d')!.getImageData(Math.floor(p.x - 10), Math.floor(p.y - 10), 21, 21).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i]! > 180 && d[i + 1]! < 110 && d[i + 2]! < 110) n++;
    return n;
  });
}

async function shot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  await page.screenshot({ path: testInfo.outputPath(`${name}.png`) });
}

test('joins, draws itself red and sends input only on change', async ({ page }, testInfo) => {
  await page.goto(`${node.base}/?name=alice`);
  await connected(page);
  // The page asked for protocol 2 first (seq 1, refused: the fake node speaks protocol 1 only), then 1.
  const hello = node.messages('hello');
  expect(hello).toEqual([{ type: 'hello', protocol: 1, name: 'alice', room: 'lobby', seq: 2 }]);
  // One input with the current keys right after the welcome.
  await expect.poll(() => node.messages('input').length).toBe(1);
  expect(node.messages('input')[0]).toEqual({ type: 'input', seq: 3, keys: { up: false, down: false, left: false, right: false } });
  await expect.poll(() => redNearMe(page)).toBeGreaterThan(20);
  await expect(page.getByTestId('status-node')).toHaveText('fake1');
  await expect(page.getByTestId('status-rtt')).toHaveText(/\d+ ms/);

  const x0 = (await state(page)).me!.x;
  await page.keyboard.down('d');
  await page.waitForTimeout(300); // key auto-repeat would not add inputs either
  await page.keyboard.down('ArrowRight'); // same direction: no change
  await page.keyboard.up('d');
  await page.waitForTimeout(300);
  await page.keyboard.up('ArrowRight');
  await expect.poll(() => node.messages('input').length).toBe(3);
  const inputs = node.messages('input');
  expect(inputs.map((m) => m['seq'])).toEqual([3, 4, 5]);
  expect(inputs[1]!['keys']).toEqual({ up: false, down: false, left: false, right: true });
  expect(inputs[2]!['keys']).toEqual({ up: false, down: false, left: false, right: false });
  await expect.poll(async () => (await state(page)).me!.x).toBeGreaterThan(x0 + 50);
  await shot(page, testInfo, 'fake-alice');
});

test('reconnects with its resume token after a retryable close', async ({ page }) => {
  await page.goto(`${node.base}/?name=bob`);
  await connected(page);
  const before = await state(page);
  // Hold the next connection for a moment: with full-jitter backoff the client may retry within milliseconds,
  // and the banner is what this test looks at in between.
  node.acceptDelayMs = 2000;
  node.closeAll(4000, 'draining');
  await expect.poll(async () => (await state(page)).state).toBe('reconnecting');
  await expect(page.getByTestId('status-banner')).toHaveAttribute('data-kind', 'reconnecting');
  await expect(page.getByTestId('status-banner')).toContainText('draining');
  node.acceptDelayMs = 0;
  await expect.poll(async () => (await state(page)).state, { timeout: 8000 }).toBe('connected');
  const after = await state(page);
  expect(after.player).toBe(before.player);
  const hellos = node.messages('hello');
  expect(hellos).toHaveLength(2);
  expect(hellos[1]!['resume']).toBe(`tok-${before.player}-2`);
  // The seq counter continued past the refused protocol 2 hello, the first connection's hello and its input.
  expect(hellos[1]!['seq']).toBe(4);
  await expect(page.getByTestId('status-banner')).toBeHidden();
});

test('reconnects after the watchdog finds no ticks for 1 s', async ({ page }) => {
  await page.goto(`${node.base}/?name=carol`);
  await connected(page);
  node.ticking = false;
  const t0 = Date.now();
  // The socket stays open, but after 1 s without a tick (once welcomed) the
  // client gives up on it and connects again (the fake node keeps the old
  // socket open).
  await expect.poll(() => node.messages('hello').length, { timeout: 5000 }).toBe(2);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  node.ticking = true;
  await expect.poll(async () => (await state(page)).state, { timeout: 5000 }).toBe('connected');
  const seq = (await state(page)).lastSeq;
  await expect.poll(async () => (await state(page)).lastSeq).toBeGreaterThan(seq);
});

test('a newer tab takes the session over: the old one stops with the reason', async ({ page }, testInfo) => {
  await page.goto(`${node.base}/?name=dave`);
  await connected(page);
  // Same resume token from another page (as a duplicated tab would have).
  const token = await page.evaluate(() => sessionStorage.getItem('tickmesh.lobby.resume'));
  const seq = await page.evaluate(() => Number(sessionStorage.getItem('tickmesh.lobby.seq')));
  const other = await page.context().newPage();
  await other.goto(`${node.base}/cluster.html`);
  await other.evaluate(
    ({ token, seq }) => {
      sessionStorage.setItem('tickmesh.lobby.resume', token!);
      sessionStorage.setItem('tickmesh.lobby.seq', String(seq));
    },
    { token, seq },
  );
  await other.goto(`${node.base}/?name=dave`);
  await connected(other);
  expect((await state(other)).player).toBe((await state(page)).player);
  await expect.poll(async () => (await state(page)).state).toBe('stopped');
  const banner = page.getByTestId('status-banner');
  await expect(banner).toHaveAttribute('data-kind', 'terminal');
  await expect(banner).toContainText('taken over');
  await expect(banner).toContainText('4503');
  await shot(page, testInfo, 'taken-over');
  // Stopped means stopped.
  const hellos = node.messages('hello').length;
  await page.waitForTimeout(1500);
  expect(node.messages('hello').length).toBe(hellos);
});

test('a rejected resume token (4501) is forgotten and the client joins once as a new player', async ({ page }) => {
  await page.goto(`${node.base}/?name=erin`);
  await connected(page);
  const first = (await state(page)).player;
  node.tokens.clear(); // the server forgets every token
  node.closeAll(4000);
  // Wait for a connection as someone else: right after closeAll the page may not have seen the close yet, and
  // still reports the old connection.
  await expect
    .poll(async () => {
      const s = await state(page);
      return s.state === 'connected' && s.player !== first;
    }, { timeout: 5000 })
    .toBe(true);
  const hellos = node.messages('hello');
  expect(hellos.length).toBe(3);
  expect(hellos[1]!['resume']).toBeDefined();
  expect(hellos[2]!['resume']).toBeUndefined();
  expect(hellos[2]!['seq']).toBe(1);
});

test('a node that speaks protocol 1 only gets protocol 1 at once (4500 to protocol 2), and the page plays', async ({ page }) => {
  await page.goto(`${node.base}/?name=grace`);
  await connected(page);
  expect(node.protocolRejects).toBe(1);
  const hellos = node.messages('hello');
  expect(hellos.length).toBe(1);
  expect(hellos[0]!['protocol']).toBe(1);
  expect(await page.evaluate(() => [window.__tickmesh.protocol, window.__tickmesh.protocolWanted])).toEqual([1, 1]);
  // ?protocol=1 asks for protocol 1 from the start.
  await page.goto(`${node.base}/?name=heidi&protocol=1`);
  await connected(page);
  expect(node.protocolRejects).toBe(1);
});

test('protocol mismatch (4500) is terminal', async ({ page }) => {
  node.rejectWith = 4500;
  await page.goto(`${node.base}/?name=frank`);
  await expect.poll(async () => (await state(page)).state).toBe('stopped');
  await expect(page.getByTestId('status-banner')).toContainText(/protocol/i);
});
