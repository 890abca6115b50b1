import { describe, expect, it } from 'vitest';
import { GRAPH_TICKS, NetGraph, netGraphLines, NetStats, utf8Length } from './netgraph';

describe('net stats', () => {
  it('keeps the last ticks in a fixed ring', () => {
    const s = new NetStats();
    for (let i = 0; i < GRAPH_TICKS + 30; i++) s.pushTick(50 + (i % 7), i % 10 === 0 ? 10 : 0);
    expect(s.filled).toBe(GRAPH_TICKS);
    expect(s.newest(s.gaps, 0)).toBe(50 + ((GRAPH_TICKS + 29) % 7));
    expect(s.max(s.gaps)).toBe(56);
    expect(s.max(s.errors)).toBe(10);
    s.pushTick(Number.NaN, Number.NaN); // first tick of an epoch: no gap
    expect(s.newest(s.gaps, 0)).toBe(0);
  });

  it('counts bytes per second over a sliding second', () => {
    const s = new NetStats();
    for (let t = 0; t < 3000; t += 50) s.addBytes(500, t); // 10 kB/s
    expect(s.bytesPerSecond(2999)).toBeGreaterThanOrEqual(9500);
    expect(s.bytesPerSecond(2999)).toBeLessThanOrEqual(10_500);
    expect(s.bytesPerSecond(3500)).toBeLessThan(6000);
    expect(s.bytesPerSecond(10_000)).toBe(0);
  });

  it('utf8Length counts bytes as the wire does', () => {
    for (const str of ['', 'abc', 'Zoë', '日本語', '🚀 rocket', '{"name":"Zoë 🚀"}']) {
      expect(utf8Length(str), str).toBe(new TextEncoder().encode(str).length);
    }
  });

  it('formats every number the graph shows', () => {
    const s = new NetStats();
    s.rttMs = 23.4;
    s.jitterMs = 2.25;
    s.protocol = 1;
    s.reconnects = 2;
    s.delayTicks = 1.5;
    s.leadTicks = 0.4;
    s.predicting = true;
    s.pushTick(52, 3.5);
    s.addBytes(2500, 0);
    const lines = netGraphLines(s, 10).join('\n');
    expect(lines).toMatch(/RTT 23 ms/);
    expect(lines).toMatch(/jitter 2\.3 ms/);
    expect(lines).toMatch(/delay 1\.50 t/);
    expect(lines).toMatch(/tick gap 52 ms/);
    expect(lines).toMatch(/pred err 3\.5 px/);
    expect(lines).toMatch(/lead 0\.40 t/);
    expect(lines).toMatch(/in 2\.5 kB\/s/);
    expect(lines).toMatch(/proto 1/);
    expect(lines).toMatch(/reconnects 2/);
    s.predicting = false;
    expect(netGraphLines(s, 10).join('\n')).toMatch(/prediction off/);
  });
});

describe('net graph', () => {
  it('draws only when visible, and toggles', () => {
    const calls: string[] = [];
    const ctx = new Proxy({}, {
      get: (_t, p) => (typeof p === 'string' && ['fillRect', 'fillText', 'setTransform'].includes(p) ? () => calls.push(p) : undefined),
      set: () => true,
    }) as unknown as CanvasRenderingContext2D;
    const s = new NetStats();
    for (let i = 0; i < 10; i++) s.pushTick(50, i);
    const g = new NetGraph(false);
    g.draw(ctx, 700, 1, s, 0);
    expect(calls).toEqual([]);
    g.toggle();
    g.draw(ctx, 700, 1, s, 0);
    expect(calls.filter((c) => c === 'fillText')).toHaveLength(4);
    expect(calls.filter((c) => c === 'fillRect').length).toBeGreaterThan(10);
  });
});
