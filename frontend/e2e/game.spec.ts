// End-to-end tests against a real 3-node cluster (started by cluster.setup.ts).
// The pages are served by the nodes themselves (the embedded frontend), so the
// page's origin /ws is the node it was loaded from.
//
// Tests run one at a time (one worker); each one leaves all three nodes
// running, restarting any node it killed.

import { expect, test, type Browser, type BrowserContext, type Page, type TestInfo } from '@playwright/test';
import { adminUrl, ensureAllNodes, isNodeName, killNode, liveNodes, nodeUrl, ownerOf, settledOwner, startNode, type NodeName } from './cluster';

interface Snap {
  state: string;
  player: string;
  node: string;
  epoch: number;
  lastSeq: number;
  me: { x: number; y: number } | null;
  players: number;
  owner: string;
  arena: { width: number; height: number } | null;
  game: string;
}

async function snap(page: Page): Promise<Snap> {
  return page.evaluate(() => {
    const t = window.__tickmesh;
    return {
      state: t.state,
      player: t.player,
      node: t.node,
      epoch: t.epoch,
      lastSeq: t.lastSeq,
      me: t.me,
      players: t.players,
      owner: t.owner,
      arena: t.arena,
      game: t.game,
    };
  });
}

/** What collect's module reports (window.__tickmesh.gameState()). */
interface CollectState {
  round: number;
  pickups: { id: number; x: number; y: number; value: number }[];
  score: number;
  scores: { id: string; name: string; score: number }[];
}

async function collectState(page: Page): Promise<CollectState> {
  return page.evaluate(() => window.__tickmesh.gameState() as unknown as CollectState);
}

interface Game {
  context: BrowserContext;
  page: Page;
}

async function openGame(browser: Browser, node: NodeName, name: string, room = 'lobby', query = ''): Promise<Game> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[${name}] page error: ${e.message}`));
  await page.goto(`${nodeUrl(node)}/?name=${encodeURIComponent(name)}&room=${room}${query}`);
  await expect
    .poll(async () => {
      const s = await snap(page);
      return s.state === 'connected' && s.me !== null;
    }, { timeout: 20_000, message: `${name} connects to ${node} and sees itself` })
    .toBe(true);
  return { context, page };
}

type Color = 'red' | 'blue' | 'gold';

/** Counts pixels of a colour in a square of radius r (canvas pixels) around arena point (x, y), or the whole canvas. */
async function countColor(page: Page, color: Color, at?: { x: number; y: number }, r = 0): Promise<number> {
  return page.evaluate(
    ({ color, at, r }) => {
      const c = document.getElementById('game') as HTMLCanvasElement;
      const ctx = c.getContext('2d')!;
      let x0 = 0;
      let y0 = 0;
      let w = c.width;
      let h = c.height;
      if (at) {
        const p = window.__tickmesh.toCanvas(at.x, at.y);
        x0 = Math.max(0, Math.floor(p.x - r));
        y0 = Math.max(0, Math.floor(p.y - r));
        w = Math.min(c.width - x0, 2 * r + 1);
        h = Math.min(c.height - y0, 2 * r + 1);
      }
      const d = ctx.getImageData(x0, y0, w, h).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        const R = d[i]!;
        const G = d[i + 1]!;
        const B = d[i + 2]!;
        const hit =
          color === 'red'
            ? R > 180 && G < 110 && B < 110
            : color === 'blue'
              ? B > 180 && R < 90 && G > 90 && G < 180
              : R > 230 && G > 100 && B < 110; // collect's pickups: #ffd54f, #ffb300, #ff6f00
        if (hit) n++;
      }
      return n;
    },
    { color, at, r },
  );
}

async function shot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  const path = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path });
  await testInfo.attach(name, { path, contentType: 'image/png' });
}

/** Waits until /api/cluster names an owner of the room. */
async function roomOwner(room = 'lobby'): Promise<{ owner: string; epoch: number }> {
  const box: { v: { owner: string; epoch: number } | null } = { v: null };
  await expect
    .poll(async () => {
      box.v = await ownerOf(room);
      return box.v !== null;
    }, { timeout: 20_000, message: `${room} has an owner` })
    .toBe(true);
  return box.v as unknown as { owner: string; epoch: number };
}

/**
 * Opens a game page on a node that does not own the room. A room other than the lobby is owned by a node with
 * sockets in it: the first page (kept open until the second one is in) makes its node the owner.
 */
async function openOnNonOwner(browser: Browser, name: string, room = 'lobby'): Promise<Game & { owner: string; node: NodeName }> {
  let game = await openGame(browser, liveNodes()[0] as NodeName, name, room);
  const { owner } = await roomOwner(room);
  let node = (await snap(game.page)).node;
  if (node === owner || !isNodeName(node)) {
    const other = liveNodes().find((n) => n !== owner) as NodeName;
    const second = await openGame(browser, other, name, room);
    await game.context.close();
    game = second;
    node = (await snap(game.page)).node;
  }
  if (!isNodeName(node)) throw new Error(`unexpected node name ${node}`);
  return { ...game, owner, node };
}

/** Clicks the canvas at world point (x, y). */
async function clickWorld(page: Page, x: number, y: number): Promise<void> {
  const p = await page.evaluate(
    ({ x, y }) => {
      const c = window.__tickmesh.toCanvas(x, y);
      const r = (document.getElementById('game') as HTMLCanvasElement).getBoundingClientRect();
      return { x: r.left + c.x / devicePixelRatio, y: r.top + c.y / devicePixelRatio };
    },
    { x, y },
  );
  await page.mouse.click(p.x, p.y);
}

test.beforeEach(async () => {
  await ensureAllNodes();
});

test('the game page draws your player in red', async ({ browser }, testInfo) => {
  const { context, page } = await openGame(browser, 'n1', 'alice');
  const s = await snap(page);
  expect(s.player).toMatch(/^p[0-9a-f]+$/);
  expect(s.epoch).toBeGreaterThan(0);
  await expect(page.getByTestId('status-state')).toHaveText('connected');
  await expect(page.getByTestId('status-node')).toHaveText(s.node);
  await expect(page.getByTestId('status-banner')).toBeHidden();
  await expect(page.getByTestId('status-game')).toHaveText('Arena');
  expect(s.game).toBe('arena');
  // Red pixels where the player is.
  await expect.poll(async () => countColor(page, 'red', (await snap(page)).me!, 12)).toBeGreaterThan(10);
  await expect(page.getByTestId('status-rtt')).toHaveText(/\d+ ms/, { timeout: 10_000 });
  await expect.poll(async () => Number(await page.getByTestId('status-tps').textContent())).toBeGreaterThan(5);
  await shot(page, testInfo, 'alice');
  await context.close();
});

test('a second player appears in blue on the first page', async ({ browser }, testInfo) => {
  const a = await openGame(browser, 'n1', 'alice');
  const b = await openGame(browser, 'n2', 'bob');
  const bob = await snap(b.page);
  await expect.poll(async () => (await snap(a.page)).players).toBeGreaterThanOrEqual(2);
  // Bob is blue on Alice's page, and Alice blue on Bob's.
  await expect.poll(async () => countColor(a.page, 'blue', (await snap(b.page)).me!, 12)).toBeGreaterThan(10);
  await expect.poll(async () => countColor(b.page, 'blue', (await snap(a.page)).me!, 12)).toBeGreaterThan(10);
  await expect.poll(async () => countColor(b.page, 'red', (await snap(b.page)).me!, 12)).toBeGreaterThan(10);
  expect(bob.player).not.toBe((await snap(a.page)).player);
  await shot(a.page, testInfo, 'alice-sees-bob');
  await shot(b.page, testInfo, 'bob-sees-alice');
  await a.context.close();
  await b.context.close();
});

test('pages speak protocol 2 by default and protocol 1 with ?protocol=1, and see the same game', async ({ browser }, testInfo) => {
  const a = await openGame(browser, 'n1', 'binary');
  const b = await openGame(browser, 'n2', 'json', 'lobby', '&protocol=1');
  const proto = (p: Page) => p.evaluate(() => ({ protocol: window.__tickmesh.protocol, binary: window.__tickmesh.binary }));
  await expect.poll(async () => (await proto(a.page)).binary.frames).toBeGreaterThan(20);
  expect((await proto(a.page)).protocol).toBe(2);
  expect(await proto(b.page)).toEqual({ protocol: 1, binary: { frames: 0, bytes: 0 } });
  // The binary page moves, stops; the JSON page draws it where the binary page's ticks put it.
  const id = (await snap(a.page)).player;
  const s = await snap(a.page);
  await a.page.keyboard.down(s.me!.x > (s.arena?.width ?? 1000) / 2 ? 'a' : 'd');
  await a.page.waitForTimeout(700);
  await a.page.keyboard.up(s.me!.x > (s.arena?.width ?? 1000) / 2 ? 'a' : 'd');
  await a.page.waitForTimeout(800);
  const me = (await snap(a.page)).me!;
  expect(Math.abs(me.x - s.me!.x)).toBeGreaterThan(50);
  await expect
    .poll(async () => b.page.evaluate((id) => window.__tickmesh.drawn().find((p) => p.id === id) ?? null, id))
    .toEqual({ id, x: me.x, y: me.y });
  // A binary tick is a fraction of a JSON one: bytes per tick of the binary page, with two players, mostly still.
  const { binary } = await proto(a.page);
  testInfo.annotations.push({ type: 'binary-bytes-per-frame', description: (binary.bytes / binary.frames).toFixed(1) });
  expect(binary.bytes / binary.frames).toBeLessThan(100);
  await a.context.close();
  await b.context.close();
});

test('holding D moves the player right', async ({ browser }, testInfo) => {
  const { context, page } = await openGame(browser, 'n1', 'mover');
  const s = await snap(page);
  const width = s.arena?.width ?? 1000;
  if (s.me!.x > width - 300) {
    // Too close to the right wall: walk left first.
    await page.keyboard.down('a');
    await expect.poll(async () => (await snap(page)).me!.x, { timeout: 10_000 }).toBeLessThan(width - 300);
    await page.keyboard.up('a');
    await page.waitForTimeout(300);
  }
  const before = (await snap(page)).me!;
  await page.keyboard.down('d');
  await page.waitForTimeout(1000);
  await page.keyboard.up('d');
  await expect.poll(async () => (await snap(page)).me!.x, { timeout: 5000 }).toBeGreaterThan(before.x + 50);
  // And it stops when released.
  await page.waitForTimeout(500);
  const stopped = (await snap(page)).me!;
  await page.waitForTimeout(500);
  expect((await snap(page)).me!.x).toBe(stopped.x);
  expect(Math.abs(stopped.y - before.y)).toBeLessThanOrEqual(1);
  await shot(page, testInfo, 'moved');
  await context.close();
});

test('killing the connected node: reconnects elsewhere within 5 s as the same player', async ({ browser }, testInfo) => {
  const { context, page, node } = await openOnNonOwner(browser, 'survivor');
  // Let the position settle (no keys are held).
  await page.waitForTimeout(500);
  const before = await snap(page);
  await shot(page, testInfo, 'before-kill');

  const t0 = Date.now();
  await killNode(node);
  await expect
    .poll(async () => {
      const s = await snap(page);
      return s.state === 'connected' && s.node !== '' && s.node !== node;
    }, { timeout: 5000, intervals: [100], message: `reconnects to another node after ${node} died` })
    .toBe(true);
  const elapsed = Date.now() - t0;
  testInfo.annotations.push({ type: 'reconnect-ms', description: String(elapsed) });

  const after = await snap(page);
  expect(after.player).toBe(before.player);
  // Ticks flow through the new node.
  await expect.poll(async () => (await snap(page)).lastSeq, { timeout: 5000 }).toBeGreaterThan(after.lastSeq);
  const me = (await snap(page)).me!;
  expect(Math.abs(me.x - before.me!.x)).toBeLessThanOrEqual(10);
  expect(Math.abs(me.y - before.me!.y)).toBeLessThanOrEqual(10);
  await shot(page, testInfo, 'after-reconnect');
  await context.close();
  await startNode(node);
});

test('a collect room shows its pickups and scores, and taking a pickup scores it', async ({ browser }, testInfo) => {
  const room = 'collect-e2e';
  const { context, page } = await openGame(browser, 'n2', 'collector', room);
  await expect(page.getByTestId('status-game')).toHaveText('Collect');
  expect((await snap(page)).game).toBe('collect');
  await expect(page.getByTestId('game-help')).toContainText('pickups');
  let st = await collectState(page);
  expect(st.pickups).toHaveLength(12);
  // The pickups are drawn (gold), the player is red, and the score board lists the player.
  const first = st.pickups[0]!;
  await expect.poll(async () => countColor(page, 'gold', { x: first.x, y: first.y }, 6)).toBeGreaterThan(5);
  await expect.poll(async () => countColor(page, 'red', (await snap(page)).me!, 12)).toBeGreaterThan(10);
  await expect(page.getByTestId('collect-scores')).toContainText('collector: 0');
  await expect(page.getByTestId('collect-round')).toHaveText(/Round \d+ — \d+ s left/);
  await shot(page, testInfo, 'collect-before');

  // Walk onto the nearest pickup (clicks aim again while it is out of reach: another player may take it).
  const me0 = (await snap(page)).me!;
  const before = st.score;
  await expect
    .poll(
      async () => {
        st = await collectState(page);
        if (st.score > before) return st.score;
        const me = (await snap(page)).me ?? me0;
        const near = [...st.pickups].sort((a, b) => Math.hypot(a.x - me.x, a.y - me.y) - Math.hypot(b.x - me.x, b.y - me.y))[0]!;
        await clickWorld(page, near.x, near.y);
        return st.score;
      },
      { timeout: 30_000, intervals: [1000], message: 'the score goes up after walking onto a pickup' },
    )
    .toBeGreaterThan(before);
  const taken = st.score;
  await expect(page.getByTestId('collect-scores')).toContainText(`collector: ${taken}`);
  // The pickup taken was replaced: still 12, at least one of them new.
  st = await collectState(page);
  expect(st.pickups).toHaveLength(12);
  expect(st.pickups.some((p) => p.id >= 12)).toBe(true);
  await shot(page, testInfo, 'collect-after');
  await context.close();
});

// Failover is the framework's, whatever the game: the same test with a room of each game.
for (const room of ['lobby', 'collect-failover']) {
  test(`killing the owner of ${room}: the game continues under a higher epoch`, async ({ browser }, testInfo) => {
    test.setTimeout(120_000);
    // The owner to kill is the one the page's ticks name once it has settled (settledOwner).
    let opened = await openOnNonOwner(browser, 'witness', room);
    let owner = await settledOwner(async () => (await snap(opened.page)).owner, opened.node);
    for (let attempt = 2; owner === null; attempt++) {
      if (attempt > 3) throw new Error(`the owner of ${room} did not settle on a node other than ${opened.node}`);
      await opened.context.close();
      opened = await openOnNonOwner(browser, 'witness', room);
      owner = await settledOwner(async () => (await snap(opened.page)).owner, opened.node);
    }
    const { context, page } = opened;
    const before = await snap(page);
    expect(before.owner, 'no handoff between the owner settling and the kill').toBe(owner);
    const game = before.game;
    const stateBefore = game === 'collect' ? await collectState(page) : null;
    await shot(page, testInfo, 'before-owner-kill');

    await killNode(owner);
    await expect
      .poll(async () => (await snap(page)).epoch, { timeout: 60_000, message: 'a new owner takes over with a higher epoch' })
      .toBeGreaterThan(before.epoch);
    const during = await snap(page);
    await expect.poll(async () => (await snap(page)).lastSeq, { timeout: 10_000 }).toBeGreaterThan(during.lastSeq + 10);
    const after = await snap(page);
    expect(after.epoch).toBeGreaterThan(before.epoch);
    expect(after.player).toBe(before.player);
    expect(after.owner).not.toBe(owner);
    expect(after.game).toBe(game);
    // The player is where it was (it held no keys and had no target).
    expect(Math.abs(after.me!.x - before.me!.x)).toBeLessThanOrEqual(10);
    expect(Math.abs(after.me!.y - before.me!.y)).toBeLessThanOrEqual(10);
    if (stateBefore !== null) {
      // The room's objects and scores came through: no pickup is gone unless taken, the round goes on.
      const stateAfter = await collectState(page);
      expect(stateAfter.pickups).toHaveLength(12);
      expect(stateAfter.round).toBeGreaterThanOrEqual(stateBefore.round);
      expect(stateAfter.score).toBe(stateBefore.score);
      await expect(page.getByTestId('collect-scores')).toContainText('witness');
    }
    await expect.poll(async () => (await ownerOf(room))?.owner, { timeout: 30_000 }).not.toBe(owner);
    await shot(page, testInfo, 'after-owner-kill');
    await context.close();
    await startNode(owner);
  });
}

test('the cluster page lists the nodes and the lobby', async ({ page }, testInfo) => {
  // Operations are on the admin listener only.
  expect((await fetch(`${nodeUrl('n1')}/api/cluster`)).status).toBe(404);
  await page.goto(`${adminUrl('n1')}/cluster.html`);
  await expect(page.getByTestId('cluster-status')).toHaveAttribute('data-state', 'ok');
  for (const n of ['n1', 'n2', 'n3']) {
    await expect(page.getByTestId(`node-${n}`).getByTestId('node-ready')).toHaveText('ready');
  }
  await shot(page, testInfo, 'cluster');
});
