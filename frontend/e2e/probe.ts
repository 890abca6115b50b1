// A frame probe for the netcode specs: runs in the page, once per animation
// frame (after the game's own frame callback, which was registered first), and
// finds the own avatar by its pixels: the centroid of the red pixels near where
// it was last seen. It also records every game key's keydown/keyup with the
// frame counter at the time, so that a spec can tell in which frame after a key
// the avatar first moved. It reads only the canvas and window.__tickmesh's
// me/toCanvas, which every build of the page has, so the same probe measures
// the build without prediction.

import type { Page } from '@playwright/test';

export interface ProbeFrame {
  /** Frame counter (1 = the probe's first frame). */
  n: number;
  /** requestAnimationFrame timestamp (ms, performance.now() time base). */
  t: number;
  /** Avatar centroid in canvas pixels, NaN when not found. */
  cx: number;
  cy: number;
  /** The same in arena units. */
  x: number;
  y: number;
  /** The server's latest position of the own player (window.__tickmesh.me). */
  sx: number;
  sy: number;
}

export interface ProbeKey {
  type: 'keydown' | 'keyup';
  code: string;
  /** Event timeStamp (ms). */
  ts: number;
  /** Frames the probe had seen when the listener ran: the next frame is n = frame + 1. */
  frame: number;
}

export interface ProbeData {
  frames: ProbeFrame[];
  keys: ProbeKey[];
}

/** Installs the probe (idempotent). It keeps the last 20,000 frames. */
export async function installProbe(page: Page): Promise<void> {
  await page.evaluate(() => {
    type F = { n: number; t: number; cx: number; cy: number; x: number; y: number; sx: number; sy: number };
    type K = { type: 'keydown' | 'keyup'; code: string; ts: number; frame: number };
    const w = window as unknown as { __probe?: { frames: F[]; keys: K[]; frame: number } };
    if (w.__probe !== undefined) return;
    const probe = { frames: [] as F[], keys: [] as K[], frame: 0 };
    w.__probe = probe;
    const canvas = document.getElementById('game') as HTMLCanvasElement;
    const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
    const onKey = (e: KeyboardEvent) => {
      if (e.repeat) return;
      probe.keys.push({ type: e.type as 'keydown' | 'keyup', code: e.code, ts: e.timeStamp, frame: probe.frame });
    };
    addEventListener('keydown', onKey, true);
    addEventListener('keyup', onKey, true);
    const R = 70; // search radius around the last centroid, canvas pixels
    let lastX = Number.NaN;
    let lastY = Number.NaN;
    const centroid = (x0: number, y0: number, w0: number, h0: number): [number, number] | null => {
      const x = Math.max(0, Math.floor(x0));
      const y = Math.max(0, Math.floor(y0));
      const wd = Math.min(canvas.width - x, Math.ceil(w0));
      const ht = Math.min(canvas.height - y, Math.ceil(h0));
      if (wd <= 0 || ht <= 0) return null;
      const d = ctx.getImageData(x, y, wd, ht).data;
      let n = 0;
      let sx = 0;
      let sy = 0;
      for (let i = 0, p = 0; i < d.length; i += 4, p++) {
        if ((d[i] as number) > 180 && (d[i + 1] as number) < 110 && (d[i + 2] as number) < 110) {
          n++;
          sx += p % wd;
          sy += Math.floor(p / wd);
        }
      }
      return n < 8 ? null : [x + sx / n + 0.5, y + sy / n + 0.5];
    };
    const loop = (t: number) => {
      probe.frame++;
      const tm = (window as unknown as { __tickmesh: { me: { x: number; y: number } | null; toCanvas(x: number, y: number): { x: number; y: number } } }).__tickmesh;
      const me = tm.me;
      let c: [number, number] | null = null;
      if (!Number.isNaN(lastX)) c = centroid(lastX - R, lastY - R, 2 * R + 1, 2 * R + 1);
      if (c === null && me !== null) {
        const p = tm.toCanvas(me.x, me.y);
        c = centroid(p.x - R, p.y - R, 2 * R + 1, 2 * R + 1);
      }
      if (c === null && me !== null) c = centroid(0, 0, canvas.width, canvas.height);
      const o = tm.toCanvas(0, 0);
      const k = tm.toCanvas(1000, 1000);
      const fx = (k.x - o.x) / 1000;
      const fy = (k.y - o.y) / 1000;
      const cx = c === null ? Number.NaN : c[0];
      const cy = c === null ? Number.NaN : c[1];
      if (c !== null) {
        lastX = cx;
        lastY = cy;
      }
      probe.frames.push({ n: probe.frame, t, cx, cy, x: (cx - o.x) / fx, y: (cy - o.y) / fy, sx: me?.x ?? Number.NaN, sy: me?.y ?? Number.NaN });
      if (probe.frames.length > 20_000) probe.frames.splice(0, 5_000);
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  });
}

export async function readProbe(page: Page): Promise<ProbeData> {
  return page.evaluate(() => {
    const p = (window as unknown as { __probe: ProbeData }).__probe;
    return { frames: p.frames.slice(), keys: p.keys.slice() };
  });
}

/** Clears the recorded frames and keys. */
export async function resetProbe(page: Page): Promise<void> {
  await page.evaluate(() => {
    const p = (window as unknown as { __probe: ProbeData }).__probe;
    p.frames.length = 0;
    p.keys.length = 0;
  });
}

export interface PressResult {
  /** keydown event -> the rAF timestamp of the first frame whose avatar moved >= 1 canvas pixel. */
  latencyMs: number;
  /** In frames: 1 = the first frame after the keydown listener ran. */
  latencyFrames: number;
  /** Distance (arena units) between the avatar drawn in the first frame after keyup and where the server leaves it. */
  releaseError: number;
  /** Farthest the drawn avatar got from its final position after the keyup frame (overshoot or lag), arena units. */
  maxErrorAfterRelease: number;
  /** |drawn - server| at the end of the window, arena units. */
  settledError: number;
  /** Largest move of the avatar between two consecutive frames, arena units. */
  maxFrameStep: number;
  /** The server's displacement between keydown and the end. */
  travel: number;
}

const dist = (ax: number, ay: number, bx: number, by: number) => Math.hypot(ax - bx, ay - by);

/**
 * Analyses one press: keys[i] is the keydown, the next keyup of the same code
 * ends it; frames up to `end` (ms) belong to it. Null when the avatar was not
 * found or never moved.
 */
export function analyzePress(data: ProbeData, down: ProbeKey, up: ProbeKey, end: number): PressResult | null {
  const fr = data.frames.filter((f) => !Number.isNaN(f.cx) && f.t <= end);
  const before = fr.filter((f) => f.n <= down.frame).at(-1);
  if (before === undefined) return null;
  const moved = fr.find((f) => f.n > down.frame && dist(f.cx, f.cy, before.cx, before.cy) >= 1);
  const released = fr.find((f) => f.n > up.frame);
  const last = fr.at(-1);
  if (moved === undefined || released === undefined || last === undefined) return null;
  let maxAfter = 0;
  for (const f of fr) if (f.n >= released.n) maxAfter = Math.max(maxAfter, dist(f.x, f.y, last.sx, last.sy));
  let maxStep = 0;
  for (let i = 1; i < fr.length; i++) {
    const a = fr[i - 1] as ProbeFrame;
    const b = fr[i] as ProbeFrame;
    if (b.n > down.frame) maxStep = Math.max(maxStep, dist(a.x, a.y, b.x, b.y));
  }
  return {
    latencyMs: moved.t - down.ts,
    latencyFrames: moved.n - down.frame,
    releaseError: dist(released.x, released.y, last.sx, last.sy),
    maxErrorAfterRelease: maxAfter,
    settledError: dist(last.x, last.y, last.sx, last.sy),
    maxFrameStep: maxStep,
    travel: dist(before.sx, before.sy, last.sx, last.sy),
  };
}

export function quantiles(xs: number[]): { min: number; p50: number; max: number; n: number } {
  const s = xs.slice().sort((a, b) => a - b);
  const q = (p: number) => (s.length === 0 ? Number.NaN : (s[Math.min(s.length - 1, Math.floor(p * s.length))] as number));
  return { min: s[0] ?? Number.NaN, p50: q(0.5), max: s.at(-1) ?? Number.NaN, n: s.length };
}
