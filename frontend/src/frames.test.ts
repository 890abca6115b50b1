import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DELTA, FrameError, KEYFRAME, splitStream, TickDecoder } from './frames';
import { decodeServerMessage, type TickMessage } from './protocol';

// The golden frame streams shared with the Go side (pkg/protocol/compact, fixtures_test.go): <name>.frames is
// what a protocol 2 socket receives, <name>.jsonl the protocol 1 tick each frame makes.
const DIR = fileURLToPath(new URL('../../pkg/protocol/testdata/fixtures/frames/', import.meta.url));
const STREAMS = ['arena', 'collect', 'wide'];

function load(name: string): { frames: Uint8Array[]; lines: string[] } {
  const frames = splitStream(new Uint8Array(readFileSync(`${DIR}${name}.frames`)));
  const lines = readFileSync(`${DIR}${name}.jsonl`, 'utf8').split('\n').filter((l) => l !== '');
  return { frames, lines };
}

/** A decoded tick as the protocol 1 JSON it stands for: the game's members back among the framework's. */
function toJSON(t: TickMessage): string {
  const out: Record<string, unknown> = { type: t.type, room: t.room, epoch: t.epoch, seq: t.seq, owner: t.owner, time: t.time, ...t.g };
  out['players'] = t.players.map((p) => {
    const o: Record<string, unknown> = { id: p.id, name: p.name, ...p.f, ack: p.ack, conn: p.conn, online: p.online };
    if (!p.online) o['away'] = p.away;
    return o;
  });
  for (const [k, list] of Object.entries(t.objects)) out[k] = list.map((o) => ({ id: o.id, ...o.f }));
  return JSON.stringify(out);
}

describe('golden frame streams', () => {
  for (const name of STREAMS) {
    it(`${name}: every frame makes the tick of its line, byte for byte, and the tick protocol 1 decodes`, () => {
      const { frames, lines } = load(name);
      expect(frames.length).toBe(lines.length);
      const kinds = new Set(frames.map((f) => f[0]));
      expect(kinds).toEqual(new Set([KEYFRAME, DELTA]));
      const dec = new TickDecoder();
      frames.forEach((f, i) => {
        const t = dec.apply(f);
        expect(toJSON(t), `${name} frame ${i}`).toBe(lines[i]);
        expect(t).toEqual(decodeServerMessage(lines[i] as string));
      });
    });
  }
});

describe('refusals', () => {
  it('refuses every cut and padded frame, keeping its state (the next frame still applies)', () => {
    for (const name of STREAMS) {
      const { frames, lines } = load(name);
      const dec = new TickDecoder();
      frames.forEach((f, i) => {
        for (let n = 0; n < f.length; n++) {
          expect(() => dec.apply(f.subarray(0, n)), `${name} frame ${i} cut to ${n}`).toThrow(FrameError);
        }
        const padded = new Uint8Array(f.length + 1);
        padded.set(f);
        expect(() => dec.apply(padded)).toThrow(/after the frame/);
        expect(toJSON(dec.apply(f))).toBe(lines[i]);
      });
    }
  });

  it('refuses a delta before a keyframe, and after a missed one, as not its base', () => {
    const { frames } = load('arena');
    const dec = new TickDecoder();
    const delta = frames[1] as Uint8Array;
    expect(delta[0]).toBe(DELTA);
    try {
      dec.apply(delta);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FrameError);
      expect((e as FrameError).base).toBe(true);
    }
    dec.apply(frames[0] as Uint8Array);
    expect(() => dec.apply(frames[2] as Uint8Array)).toThrow(FrameError);
    dec.apply(delta);
    dec.apply(frames[2] as Uint8Array);
  });

  it('never throws anything but a FrameError, whatever the bytes', () => {
    const { frames } = load('collect');
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let round = 0; round < 3000; round++) {
      const dec = new TickDecoder();
      for (const f of frames.slice(0, 6)) {
        const g = f.slice();
        for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) g[Math.floor(rnd() * g.length)] = Math.floor(rnd() * 256);
        try {
          dec.apply(g);
        } catch (e) {
          expect(e).toBeInstanceOf(FrameError);
        }
      }
    }
  });
});

describe('no allocation per tick', () => {
  it('reuses the tick objects of its ring, their players, records and objects', () => {
    const { frames } = load('collect');
    const ring = 8;
    const dec = new TickDecoder(ring);
    const ticks = frames.map((f) => dec.apply(f));
    // Frame i and i+ring share their tick object; so do their players (same count) and pickups.
    for (let i = 20; i + ring < ticks.length; i++) {
      const a = ticks[i] as TickMessage;
      expect(ticks[i + ring]).toBe(a);
    }
    const steady = ticks[ticks.length - 1] as TickMessage;
    const players = [...steady.players];
    const fs = players.map((p) => p.f);
    const pickups = [...(steady.objects['pickups'] ?? [])];
    // Apply the stream again from its last keyframe: the same objects come back, rewritten.
    const lastKey = frames.map((f) => f[0]).lastIndexOf(KEYFRAME);
    const again = frames.slice(lastKey).map((f) => dec.apply(f));
    const same = again.find((t) => t === steady);
    expect(same).toBeDefined();
    expect(same?.players.every((p, i) => p === players[i] && p.f === fs[i])).toBe(true);
    expect(same?.objects['pickups']?.every((o, i) => o === pickups[i])).toBe(true);
  });
});
