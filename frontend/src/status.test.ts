import { describe, expect, it } from 'vitest';
import { bannerFor, RateMeter, type StatusModel } from './status';

const base: StatusModel = {
  state: 'connected', room: 'lobby', game: 'Arena', player: 'p1', node: 'n1', endpoint: 'ws://x/ws', owner: 'n2', epoch: 3, lastSeq: 10,
  tps: 20, rttMs: 5, attempt: 0, retryInMs: null, players: 1, online: 1, closeReason: '', stopReason: '', stopCode: 0, lastError: '',
};

describe('banner', () => {
  it('is hidden while connected', () => {
    expect(bannerFor(base).kind).toBe('none');
  });
  it('says connecting / reconnecting with the retry countdown', () => {
    expect(bannerFor({ ...base, state: 'connecting' }).text).toMatch(/^Connecting/);
    const b = bannerFor({ ...base, state: 'reconnecting', attempt: 3, retryInMs: 1234, closeReason: 'connection lost' });
    expect(b.kind).toBe('reconnecting');
    expect(b.text).toContain('connection lost');
    expect(b.text).toContain('attempt 3');
    expect(b.text).toContain('1.2 s');
  });
  it('shows the terminal reason', () => {
    const b = bannerFor({ ...base, state: 'stopped', stopReason: 'this session was taken over', stopCode: 4503 });
    expect(b.kind).toBe('terminal');
    expect(b.text).toContain('taken over');
    expect(b.text).toContain('4503');
  });
});

describe('RateMeter', () => {
  it('counts events in the last second', () => {
    const m = new RateMeter(8);
    for (let t = 0; t < 1000; t += 50) m.add(t); // 20 events, ring holds 8
    expect(m.rate(1000)).toBe(8);
    const m2 = new RateMeter();
    for (let t = 0; t < 3000; t += 50) m2.add(t);
    expect(m2.rate(2999)).toBe(20);
    expect(m2.rate(10_000)).toBe(0);
  });
});
