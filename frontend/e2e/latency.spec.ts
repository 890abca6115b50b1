// Benchmark (not a pass/fail test of speed): keydown -> the own avatar's first
// moved frame, and the correction error, against the real cluster, through a
// delay proxy. Results are printed and written to
// test-results/latency-<label>-<delay>ms.json; docs/BENCHMARKS.md records them.
//
//   BENCH_LABEL=predict npx playwright test e2e/latency.spec.ts
//   BENCH_LABEL=nopredict BENCH_QUERY=predict=0 npx playwright test e2e/latency.spec.ts
//   BENCH_LABEL=baseline TICKMESH_BIN=/tmp/old-node npx playwright test e2e/latency.spec.ts
//
// BENCH_DELAYS (default "0,150": ms added each way between page and node) and
// BENCH_PRESSES (default 7) tune it. The only assertions are that every press
// was seen to move the avatar and that it settles where the server has it.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { ensureAllNodes, FRONTEND_DIR, nodeUrl } from './cluster';
import { startDelayProxy } from './delayproxy';
import { analyzePress, installProbe, quantiles, readProbe, resetProbe, type PressResult } from './probe';

const LABEL = process.env['BENCH_LABEL'] ?? 'current';
const QUERY = process.env['BENCH_QUERY'] ?? '';
const DELAYS = (process.env['BENCH_DELAYS'] ?? '0,150').split(',').map(Number);
const PRESSES = Number(process.env['BENCH_PRESSES'] ?? '7');

test.beforeEach(async () => {
  await ensureAllNodes();
});

for (const delay of DELAYS) {
  test(`keydown to movement, ${delay} ms each way (${LABEL})`, async ({ browser }, testInfo) => {
    test.setTimeout(60_000 + PRESSES * (3000 + 4 * delay));
    const load0 = loadavg()[0] as number;
    const proxy = await startDelayProxy(Number(new URL(nodeUrl('n1')).port), delay);
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
      await page.goto(`http://127.0.0.1:${proxy.port}/?name=bench-${delay}${QUERY === '' ? '' : `&${QUERY}`}`);
      await expect
        .poll(() => page.evaluate(() => window.__tickmesh.state === 'connected' && window.__tickmesh.me !== null), { timeout: 20_000 })
        .toBe(true);
      await installProbe(page);
      await page.waitForTimeout(1000);
      const results: PressResult[] = [];
      const frameGaps: number[] = [];
      for (let i = 0; i < PRESSES; i++) {
        const me = await page.evaluate(() => window.__tickmesh.me as { x: number; y: number });
        const key = me.x < 500 ? 'd' : 'a';
        await resetProbe(page);
        await page.waitForTimeout(100 + ((i * 37) % 50)); // spread presses over the tick phase
        await page.keyboard.down(key);
        await page.waitForTimeout(300 + ((i * 53) % 200));
        await page.keyboard.up(key);
        // Settle: the ticks after the release have come back and the server has the player at rest.
        await page.waitForTimeout(2 * delay + 600);
        await expect
          .poll(async () => {
            const a = await page.evaluate(() => window.__tickmesh.me);
            await page.waitForTimeout(200);
            const b = await page.evaluate(() => window.__tickmesh.me);
            return a !== null && b !== null && a.x === b.x && a.y === b.y;
          }, { timeout: 10_000 })
          .toBe(true);
        await page.waitForTimeout(300);
        const data = await readProbe(page);
        const down = data.keys.find((k) => k.type === 'keydown');
        const up = data.keys.find((k) => k.type === 'keyup');
        expect(down, 'keydown seen by the page').toBeDefined();
        expect(up, 'keyup seen by the page').toBeDefined();
        const end = (data.frames.at(-1)?.t ?? 0) + 1;
        const r = analyzePress(data, down!, up!, end);
        expect(r, `press ${i}: the avatar was found and moved`).not.toBeNull();
        results.push(r!);
        for (let j = 1; j < data.frames.length; j++) frameGaps.push(data.frames[j]!.t - data.frames[j - 1]!.t);
      }
      // The predictor's own account, when the build has one (the build without prediction does not).
      const prediction = await page.evaluate(() => (window.__tickmesh as { prediction?: unknown }).prediction ?? null);
      const summary = {
        label: LABEL,
        machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', loadavg1mStart: load0, loadavg1mEnd: loadavg()[0] },
        prediction,
        query: QUERY,
        delayMsEachWay: delay,
        presses: results.length,
        frameMs: quantiles(frameGaps),
        latencyMs: quantiles(results.map((r) => r.latencyMs)),
        latencyFrames: quantiles(results.map((r) => r.latencyFrames)),
        releaseError: quantiles(results.map((r) => r.releaseError)),
        maxErrorAfterRelease: quantiles(results.map((r) => r.maxErrorAfterRelease)),
        settledError: quantiles(results.map((r) => r.settledError)),
        maxFrameStep: quantiles(results.map((r) => r.maxFrameStep)),
        travel: quantiles(results.map((r) => r.travel)),
        raw: results,
      };
      const dir = join(FRONTEND_DIR, 'test-results');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `latency-${LABEL}-${delay}ms.json`);
      writeFileSync(file, JSON.stringify(summary, null, 2));
      await testInfo.attach(`latency-${LABEL}-${delay}ms`, { path: file, contentType: 'application/json' });
      const f = (q: { min: number; p50: number; max: number }, d = 1) => `${q.p50.toFixed(d)} (${q.min.toFixed(d)}-${q.max.toFixed(d)})`;
      console.log(
        `[${LABEL} ${delay} ms] latency ${f(summary.latencyMs)} ms, ${f(summary.latencyFrames, 0)} frames (frame ${f(summary.frameMs)} ms); ` +
          `release error ${f(summary.releaseError)}, max after release ${f(summary.maxErrorAfterRelease)}, settled ${f(summary.settledError)}, ` +
          `largest frame step ${f(summary.maxFrameStep)} (arena units); load ${load0.toFixed(1)}-${(loadavg()[0] as number).toFixed(1)}`,
      );
      for (const r of results) expect(r.settledError, 'the avatar settles where the server has it').toBeLessThanOrEqual(2);
    } finally {
      await context.close();
      await proxy.close();
    }
  });
}
