import { describe, expect, it } from 'vitest';
import { MemoryStorage, Session } from './session';

describe('Session', () => {
  it('persists the resume token and seq counter per room', () => {
    const st = new MemoryStorage();
    const s = new Session(st, 'lobby');
    expect(s.resume).toBeNull();
    expect(s.nextSeq()).toBe(1);
    s.welcome('p1', 'tok', 0);
    expect(s.nextSeq()).toBe(2);
    const again = new Session(st, 'lobby');
    expect(again.resume).toBe('tok');
    expect(again.seq).toBe(2);
    expect(again.nextSeq()).toBe(3);
    expect(new Session(st, 'other').resume).toBeNull();
  });

  it('never reuses a seq at or below the server ack', () => {
    const s = new Session(new MemoryStorage(), 'lobby');
    s.nextSeq();
    s.welcome('p1', 'tok', 41);
    expect(s.nextSeq()).toBe(42);
    s.observeAck(10);
    expect(s.nextSeq()).toBe(43);
  });

  it('clear forgets token and counter (4501)', () => {
    const st = new MemoryStorage();
    const s = new Session(st, 'lobby');
    s.nextSeq();
    s.welcome('p1', 'tok', 5);
    s.clear();
    expect(s.resume).toBeNull();
    expect(s.seq).toBe(0);
    expect(new Session(st, 'lobby').resume).toBeNull();
    expect(new Session(st, 'lobby').seq).toBe(0);
  });

  it('survives a storage that throws', () => {
    const bad = {
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('denied');
      },
      removeItem: () => {
        throw new Error('denied');
      },
    };
    const s = new Session(bad, 'lobby');
    expect(s.nextSeq()).toBe(1);
    s.welcome('p', 't', 0);
    expect(s.resume).toBe('t');
  });
});
