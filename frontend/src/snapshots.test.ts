import { describe, expect, it } from 'vitest';
import { interpolationFactor, lerp, SnapshotBuffer, type RenderPlayer } from './snapshots';
import { tick } from './testutil/fakes';

function positions(b: SnapshotBuffer, rt: number): Record<string, [number, number]> {
  const out: RenderPlayer[] = [];
  const n = b.sample(rt, out);
  const r: Record<string, [number, number]> = {};
  for (let i = 0; i < n; i++) {
    const p = out[i] as RenderPlayer;
    r[p.id] = [p.x, p.y];
  }
  return r;
}

describe('epoch fencing', () => {
  it('never accepts a lower epoch', () => {
    const b = new SnapshotBuffer();
    expect(b.push(tick(3, 100, [{ id: 'a', x: 1, y: 1 }]), 0)).toBe('accepted');
    expect(b.push(tick(2, 500, [{ id: 'a', x: 999, y: 999 }]), 50)).toBe('stale-epoch');
    expect(b.epoch).toBe(3);
    expect(b.lastSeq).toBe(100);
    expect(b.size).toBe(1);
    // Nothing from epoch 2 is ever drawn.
    expect(positions(b, b.advance(100))).toEqual({ a: [1, 1] });
  });

  it('drops equal or lower seqs within an epoch', () => {
    const b = new SnapshotBuffer();
    expect(b.push(tick(1, 10), 0)).toBe('accepted');
    expect(b.push(tick(1, 10), 1)).toBe('stale-seq');
    expect(b.push(tick(1, 9), 2)).toBe('stale-seq');
    expect(b.push(tick(1, 12), 3)).toBe('accepted');
    expect(b.lastSeq).toBe(12);
    expect(b.size).toBe(2);
  });

  it('resets the buffer on a higher epoch, even with a lower seq', () => {
    const b = new SnapshotBuffer();
    for (let s = 1; s <= 5; s++) b.push(tick(1, 100 + s, [{ id: 'a', x: s, y: 0 }]), s * 50);
    expect(b.size).toBe(5);
    expect(b.push(tick(2, 90, [{ id: 'a', x: 500, y: 0 }]), 300)).toBe('accepted');
    expect(b.epoch).toBe(2);
    expect(b.size).toBe(1);
    expect(b.lastSeq).toBe(90);
    expect(b.oldest?.seq).toBe(90);
    expect(positions(b, b.advance(301))).toEqual({ a: [500, 0] });
    // The old epoch is fenced off for good.
    expect(b.push(tick(1, 200), 320)).toBe('stale-epoch');
  });

  it('keeps at most capacity ticks', () => {
    const b = new SnapshotBuffer({ capacity: 4 });
    for (let s = 1; s <= 10; s++) b.push(tick(1, s), s);
    expect(b.size).toBe(4);
    expect(b.oldest?.seq).toBe(7);
  });
});

describe('interpolation', () => {
  it('lerp and factor', () => {
    expect(lerp(10, 20, 0)).toBe(10);
    expect(lerp(10, 20, 0.25)).toBe(12.5);
    expect(lerp(10, 20, 1)).toBe(20);
    expect(interpolationFactor(10, 12, 11)).toBe(0.5);
    expect(interpolationFactor(10, 12, 9)).toBe(0);
    expect(interpolationFactor(10, 12, 13)).toBe(1);
    expect(interpolationFactor(10, 10, 10)).toBe(0);
  });

  it('interpolates players between the ticks around the render tick', () => {
    const b = new SnapshotBuffer();
    b.push(tick(1, 10, [{ id: 'a', x: 0, y: 100 }, { id: 'b', x: 50, y: 50 }]), 0);
    b.push(tick(1, 12, [{ id: 'a', x: 20, y: 80 }, { id: 'c', x: 7, y: 7 }]), 100);
    b.push(tick(1, 13, [{ id: 'a', x: 30, y: 80 }]), 150);
    // Halfway between seq 10 and 12 (a tick went missing: seq-based factor).
    expect(positions(b, 11)).toEqual({ a: [10, 90], c: [7, 7] });
    expect(positions(b, 12.5)).toEqual({ a: [25, 80] });
    expect(positions(b, 13)).toEqual({ a: [30, 80] });
    // Players at rest stay at the newest tick past it; never drawn before the oldest.
    expect(positions(b, 20)).toEqual({ a: [30, 80] });
    expect(positions(b, 5)).toEqual({ a: [0, 100], b: [50, 50] });
  });

  it('reuses the output objects', () => {
    const b = new SnapshotBuffer();
    b.push(tick(1, 1, [{ id: 'a', x: 0, y: 0 }]), 0);
    b.push(tick(1, 2, [{ id: 'a', x: 10, y: 0 }]), 50);
    const out: RenderPlayer[] = [];
    b.sample(1.5, out);
    const first = out[0];
    b.sample(1.7, out);
    expect(out[0]).toBe(first);
    expect(out[0]?.x).toBeCloseTo(7);
  });

  it('extrapolates late players by their velocity for at most one tick, inside the arena', () => {
    const b = new SnapshotBuffer();
    b.push(tick(1, 10, [{ id: 'a', x: 100, y: 100, vx: 10, vy: -10 }, { id: 'w', x: 995, y: 5, vx: 10, vy: -10 }]), 0);
    b.push(tick(1, 11, [{ id: 'a', x: 110, y: 90, vx: 10, vy: -10 }, { id: 'w', x: 1000, y: 0, vx: 10, vy: -10 }]), 50);
    expect(positions(b, 11.5)).toEqual({ a: [115, 85], w: [1000, 0] });
    expect(positions(b, 12)).toEqual({ a: [120, 80], w: [1000, 0] });
    expect(positions(b, 14)).toEqual({ a: [120, 80], w: [1000, 0] }); // one tick at most
    expect(b.extrapolated).toBe(3);
  });

  it('with a move limit, catches up a late turn over frames and jumps only past the snap distance', () => {
    const b = new SnapshotBuffer();
    const out: RenderPlayer[] = [];
    const limit = { step: 10, snap: 40 };
    b.push(tick(1, 10, [{ id: 'a', x: 100, y: 0, vx: 10 }, { id: 'b', x: 500, y: 500 }]), 0);
    b.sample(10.9, out, limit); // extrapolated: a at 109
    expect(out[0]?.x).toBe(109);
    // The late tick 11 shows a turned back to 90: drawn 10 units at most per frame.
    b.push(tick(1, 11, [{ id: 'a', x: 90, y: 0, vx: -10 }, { id: 'b', x: 500, y: 500 }]), 60);
    b.sample(11, out, limit);
    expect(out[0]?.x).toBe(99);
    b.sample(11, out, limit);
    expect(out[0]?.x).toBe(90);
    // A teleport (more than snap away) is drawn at once.
    b.push(tick(1, 12, [{ id: 'a', x: 700, y: 0 }, { id: 'b', x: 500, y: 500 }]), 110);
    b.sample(12, out, limit);
    expect(out[0]?.x).toBe(700);
    // Another player at that index (a joined before it): no limit.
    b.push(tick(1, 13, [{ id: '0', x: 0, y: 0 }, { id: 'a', x: 700, y: 0 }, { id: 'b', x: 500, y: 500 }]), 160);
    b.sample(13, out, limit);
    expect(out.slice(0, 3).map((p) => [p.id, p.x])).toEqual([['0', 0], ['a', 700], ['b', 500]]);
  });

  it('renders behind the tick clock by its render delay, at the tick rate', () => {
    const b = new SnapshotBuffer();
    // 20 Hz, steady: the delay is the minimum, 1.5 ticks.
    for (let s = 0; s <= 40; s++) b.push(tick(1, 100 + s), s * 50);
    expect(b.rate()).toBe(20);
    expect(b.clock.delayTicks).toBe(1.5);
    expect(b.advance(2000)).toBeCloseTo(138.5, 5); // newest 140 arrived just now
    expect(b.advance(2025)).toBeCloseTo(139, 5);
    b.push(tick(1, 141), 2050);
    expect(b.advance(2050)).toBeCloseTo(139.5, 5);
  });

  it('paces the render tick: never back, at most one tick per frame, catching up after late ticks', () => {
    const b = new SnapshotBuffer();
    let t = 0;
    let seq = 0;
    let prev = Number.NaN;
    const frame = (now: number) => {
      const rt = b.advance(now);
      if (!Number.isNaN(prev)) {
        const f = 16 / 50;
        expect(rt - prev).toBeGreaterThanOrEqual(0);
        expect(rt - prev).toBeLessThanOrEqual(Math.min(2 * f, Math.max(1, f)) + 1e-9);
      }
      prev = rt;
    };
    // Two seconds steady, then 300 ms without ticks, then the six late ones at once, then steady again.
    for (; t < 2000; t += 16) {
      while (seq * 50 <= t) b.push(tick(1, seq++), seq * 50);
      frame(t);
    }
    const stalledAt = seq;
    for (; t < 2300; t += 16) frame(t);
    expect(b.renderTick).toBeLessThanOrEqual(stalledAt); // newest + 1 at most
    for (; seq * 50 <= t; seq++) b.push(tick(1, seq), t);
    for (; t < 5000; t += 16) {
      while (seq * 50 <= t) b.push(tick(1, seq++), t);
      frame(t);
    }
    // Caught up with the clock (whose delay grew with the late ticks).
    expect(Math.abs(b.renderTick - b.clock.renderTick(t))).toBeLessThan(0.5);
  });

  it('runs at the measured rate when the server is not at 20 Hz', () => {
    const b = new SnapshotBuffer();
    for (let s = 0; s <= 40; s++) b.push(tick(1, s), s * 100); // 10 Hz
    expect(b.rate()).toBe(10);
    const r0 = b.advance(4000);
    expect(b.advance(4100) - r0).toBeCloseTo(1, 5);
  });

  it('after a stall stops one tick past the newest, then follows the new ticks', () => {
    const b = new SnapshotBuffer();
    for (let s = 0; s <= 20; s++) b.push(tick(1, s), s * 50);
    b.advance(1000);
    // No ticks for 2 s: the clock stops one tick past the newest (extrapolating).
    expect(b.advance(3000)).toBe(21);
    // A new owner's ticks (new epoch): drawn from its ticks at once.
    for (let s = 60; s <= 62; s++) b.push(tick(2, s), 3000 + (s - 60) * 50);
    const rt = b.advance(3100);
    expect(rt).toBeGreaterThanOrEqual(60);
    expect(rt).toBeLessThanOrEqual(62);
  });
});
