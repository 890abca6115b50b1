import { describe, expect, it } from 'vitest';
import { TickClock } from './tickclock';

/** Feeds ticks first..last of an epoch, tick k arriving at base + (k - first) * 50 + late(k). */
function feed(c: TickClock, epoch: number, first: number, last: number, base: number, late: (k: number) => number = () => 0): number {
  let t = base;
  for (let k = first; k <= last; k++) {
    t = base + (k - first) * 50 + late(k);
    c.observe(epoch, k, t);
  }
  return t;
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let r = seed;
  return () => {
    r = (r * 1103515245 + 12345) % 2147483648;
    return r / 2147483648;
  };
}

describe('tick clock', () => {
  it('maps local time to ticks along the earliest arrivals', () => {
    const c = new TickClock();
    expect(Number.isNaN(c.tickAt(0))).toBe(true);
    feed(c, 1, 100, 140, 1000);
    expect(c.tickAt(1000 + 40 * 50)).toBeCloseTo(140, 9);
    expect(c.tickAt(1000 + 40 * 50 + 25)).toBeCloseTo(140.5, 9);
    expect(c.jitterMs).toBe(0);
    expect(c.lastGapMs).toBe(50);
  });

  it('follows the earliest arrivals, not the late ones', () => {
    const c = new TickClock();
    // Every third tick 30 ms late.
    feed(c, 1, 0, 60, 0, (k) => (k % 3 === 0 ? 30 : 0));
    expect(c.tickAt(60 * 50)).toBeCloseTo(60, 1);
    expect(c.lateP95Ms).toBeCloseTo(30, 5);
  });

  it('moves the line slowly (2 ms per tick) when the arrivals drift', () => {
    const c = new TickClock();
    feed(c, 1, 0, 40, 0);
    // All later ticks arrive 20 ms later: the line follows at 2 ms per tick once the early ones leave the window.
    const t = feed(c, 1, 41, 120, 41 * 50 + 20);
    expect(c.tickAt(t)).toBeCloseTo(120, 1);
    expect(c.anchors).toBe(1);
  });

  it('follows an owner pause (every later tick 600 ms late) at 10 ms per tick, without a jump back', () => {
    const c = new TickClock();
    feed(c, 1, 0, 40, 0);
    let prev = -Infinity;
    for (let k = 41; k <= 140; k++) {
      const arrival = k * 50 + 600;
      // Frames between the ticks: the render tick goes back by at most one step of the line (10 ms, 0.2 tick).
      for (let f = arrival - 50; f < arrival; f += 16) {
        const rt = c.renderTick(f);
        if (prev !== -Infinity) expect(rt).toBeGreaterThanOrEqual(prev - 0.2);
        prev = rt;
      }
      c.observe(1, k, arrival);
    }
    expect(c.anchors).toBe(1);
    expect(c.tickAt(140 * 50 + 600)).toBeCloseTo(140, 1);
  });

  it('reports an owner pause as a lag from its second late tick and one shift, while the line follows slowly', () => {
    const c = new TickClock();
    feed(c, 1, 0, 40, 0);
    const gen = c.generation;
    c.observe(1, 41, 41 * 50 + 600);
    expect(c.lagMs).toBe(0); // one late tick may be jitter
    c.observe(1, 42, 42 * 50 + 600);
    expect(c.lagMs).toBeGreaterThan(550);
    expect(c.shifts).toBe(1);
    expect(c.generation).toBe(gen + 1);
    // The owner's tick now is the line less the lag, though the line itself is still ~12 ticks ahead.
    expect(c.tickAt(42 * 50 + 600) - c.lagTicks).toBeCloseTo(42, 1);
    expect(c.tickAt(42 * 50 + 600)).toBeGreaterThan(52);
    // As the line catches up the lag shrinks with it, without another shift; at the end both agree.
    for (let k = 43; k <= 140; k++) {
      c.observe(1, k, k * 50 + 600);
      // Within the step at the lag's release (two slews, 4 ms: 0.08 tick).
      expect(Math.abs(c.tickAt(k * 50 + 600) - c.lagTicks - k), `tick ${k}`).toBeLessThanOrEqual(0.081);
    }
    expect(c.shifts).toBe(1);
    expect(c.lagMs).toBe(0);
    expect(c.anchors).toBe(1);
  });

  it('no lag or shift from jitter, or from a burst of ticks after the tab stalled', () => {
    const r = rng(5);
    const c = new TickClock();
    feed(c, 1, 0, 400, 0, () => r() * 45);
    expect(c.shifts).toBe(0);
    // The tab froze for 600 ms: ticks 401..412 wait in the socket and arrive together, then on time again.
    const t = 412 * 50 + 5;
    for (let k = 401; k <= 412; k++) c.observe(1, k, t);
    feed(c, 1, 413, 450, 413 * 50);
    expect(c.lagMs).toBe(0);
    expect(c.shifts).toBe(0);
    // After a pause on a jittery path the lag is released once the line has caught up, and counts one shift.
    feed(c, 1, 451, 1000, 451 * 50 + 600, () => r() * 45);
    expect(c.shifts).toBe(1);
    expect(c.lagMs).toBeLessThan(50);
  });

  it('re-anchors when the last ticks are more than a second off the line', () => {
    const c = new TickClock();
    feed(c, 1, 0, 40, 0);
    feed(c, 1, 41, 45, 41 * 50 + 2000);
    expect(c.anchors).toBe(2);
    expect(c.tickAt(45 * 50 + 2000)).toBeCloseTo(45, 1);
  });

  it('re-anchors on a new epoch whose numbering starts lower', () => {
    const c = new TickClock();
    feed(c, 1, 500, 540, 0);
    feed(c, 2, 480, 490, 5000);
    expect(c.tickAt(5000 + 10 * 50)).toBeCloseTo(490, 9);
  });

  it('render delay: 1.5 ticks on a steady network, growing with jitter, bounded by 4', () => {
    const steady = new TickClock();
    feed(steady, 1, 0, 80, 0);
    for (let t = 4000; t < 8000; t += 16) steady.renderTick(t);
    expect(steady.delayTicks).toBe(1.5);

    const r = rng(7);
    const jittery = new TickClock();
    feed(jittery, 1, 0, 200, 0, () => r() * 40); // up to 40 ms late
    expect(jittery.jitterMs).toBeGreaterThan(5);
    expect(jittery.targetDelayTicks).toBeGreaterThan(2);
    expect(jittery.targetDelayTicks).toBeLessThan(2.5);
    for (let t = 10_000; t < 14_000; t += 16) jittery.renderTick(t);
    expect(jittery.delayTicks).toBeCloseTo(jittery.targetDelayTicks, 9);

    const r2 = rng(9);
    const awful = new TickClock();
    feed(awful, 1, 0, 200, 0, () => r2() * 400);
    expect(awful.targetDelayTicks).toBe(4);
  });

  it('changes the render delay gradually: at most 2 ticks/s up and 0.5 tick/s down', () => {
    const c = new TickClock();
    let t = feed(c, 1, 0, 40, 0);
    c.renderTick(t);
    const r = rng(3);
    t = feed(c, 1, 41, 100, 41 * 50, () => r() * 100);
    expect(c.targetDelayTicks).toBeGreaterThan(3);
    let rt = c.renderTick(t);
    let prev = c.delayTicks;
    for (let i = 1; i <= 30; i++) {
      const now = t + i * 16;
      const next = c.renderTick(now);
      expect(c.delayTicks - prev).toBeLessThanOrEqual(2 * 0.016 + 1e-9);
      // The render tick never runs backwards.
      expect(next).toBeGreaterThan(rt);
      prev = c.delayTicks;
      rt = next;
    }
  });

  it('adopts the measured rate when no rate was announced and 20 Hz is wrong', () => {
    const c = new TickClock();
    for (let k = 0; k <= 60; k++) c.observe(1, k, k * 100); // 10 Hz
    expect(c.tickRate).toBe(10);
    expect(c.tickAt(60 * 100 + 50)).toBeCloseTo(60.5, 1);
    const fixed = new TickClock();
    fixed.setTickRate(20, true);
    for (let k = 0; k <= 60; k++) fixed.observe(1, k, k * 100);
    expect(fixed.tickRate).toBe(20);
  });
});
