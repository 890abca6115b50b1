import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  checkClientMessage,
  classifyClose,
  decodeServerMessage,
  DecodeError,
  encodeClientMessage,
  helloMessage,
  inputMessage,
  keysToMask,
  MAX_DATA_BYTES,
  sanitizeName,
  validName,
  validRoom,
  type ClientMessage,
  type Keys,
  type TickMessage,
} from './protocol';

/** A decoded tick as the JSON object it came from: the game's members back among the framework's. */
function flattenTick(t: TickMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { type: t.type, room: t.room, epoch: t.epoch, seq: t.seq, owner: t.owner, time: t.time, ...t.g };
  out['players'] = t.players.map((p) => {
    const o: Record<string, unknown> = { id: p.id, name: p.name, ...p.f, ack: p.ack, conn: p.conn, online: p.online };
    if (!p.online) o['away'] = p.away;
    return o;
  });
  for (const [k, list] of Object.entries(t.objects)) out[k] = list.map((o) => ({ id: o.id, ...o.f }));
  return out;
}

// Shared with the Go side (pkg/protocol): one message per file.
const FIXTURES = fileURLToPath(new URL('../../pkg/protocol/testdata/fixtures/', import.meta.url));

function fixtures(dir: string): [string, string][] {
  const d = join(FIXTURES, dir);
  return readdirSync(d)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f, readFileSync(join(d, f), 'utf8')]);
}

describe('shared fixtures', () => {
  it('exist', () => {
    expect(existsSync(FIXTURES), `${FIXTURES} is missing`).toBe(true);
    expect(fixtures('server').length).toBeGreaterThan(0);
    expect(fixtures('client').length).toBeGreaterThan(0);
    expect(fixtures('invalid').length).toBeGreaterThan(0);
  });

  describe('server messages decode', () => {
    for (const [file, text] of fixtures('server')) {
      it(file, () => {
        const raw = JSON.parse(text) as Record<string, unknown>;
        const msg = decodeServerMessage(text) as unknown as Record<string, unknown>;
        expect(msg['type']).toBe(raw['type']);
        if (raw['type'] === 'tick') {
          // The tick, put back together from the framework's members and the game's (g, f, objects), is the fixture.
          expect(flattenTick(msg as unknown as TickMessage)).toEqual(raw);
          return;
        }
        // Every field present in the fixture that the client models decodes to
        // the same value (defaults fill only absent fields).
        for (const [k, v] of Object.entries(msg)) {
          if (k in raw) expect(v, k).toEqual(raw[k]);
        }
      });
    }
  });

  describe('client messages: the encoder produces the same message', () => {
    for (const [file, text] of fixtures('client')) {
      it(file, () => {
        const want = JSON.parse(text) as Record<string, unknown>;
        let msg: ClientMessage;
        switch (want['type']) {
          case 'hello': {
            const opts: Parameters<typeof helloMessage>[0] = { name: want['name'] as string };
            if (want['seq'] !== undefined) opts.seq = want['seq'] as number;
            if (want['resume'] !== undefined) opts.resume = want['resume'] as string;
            if (want['room'] !== undefined) opts.room = want['room'] as string;
            opts.protocol = want['protocol'] as number;
            msg = helloMessage(opts);
            break;
          }
          case 'input':
            msg = inputMessage(want['seq'] as number, 'keys' in want ? { keys: want['keys'] as Keys } : { data: want['data'] });
            break;
          case 'ping':
            msg = want['t'] === undefined ? { type: 'ping' } : { type: 'ping', t: want['t'] as number };
            break;
          default:
            throw new Error(`unexpected client fixture type ${String(want['type'])}`);
        }
        expect(checkClientMessage(want), 'the fixture passes the client-side check').toBeNull();
        expect(JSON.parse(encodeClientMessage(msg))).toEqual(want);
      });
    }
  });

  // invalid/*.json are client frames the server rejects. The client never
  // produces them: every frame it sends is JSON.stringify output of a message
  // that passed checkClientMessage. So each invalid frame must either not be
  // JSON.stringify output at all (unparsable, or with duplicate members or
  // non-canonical numbers, which JSON.parse cannot see) or fail the check.
  describe('invalid client frames are never produced by the encoder', () => {
    for (const [file, text] of fixtures('invalid')) {
      it(file, () => {
        const { frame, code } = JSON.parse(text) as { frame: string; code: string };
        expect(typeof code).toBe('string');
        let parsed: unknown;
        try {
          parsed = JSON.parse(frame);
        } catch {
          return; // not JSON: never produced
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return;
        if (checkClientMessage(parsed) === null) {
          // Semantically fine once parsed: the frame itself must be something
          // JSON.stringify never writes (duplicate keys, 42.0, 4.2e1).
          expect(JSON.stringify(parsed), `${file} would pass the client-side check`).not.toBe(frame);
        }
        // Whatever the encoder makes of the same value is either refused or a
        // valid, different frame.
        let out: string;
        try {
          out = encodeClientMessage(parsed as ClientMessage);
        } catch {
          return;
        }
        expect(out).not.toBe(frame);
        expect(checkClientMessage(JSON.parse(out))).toBeNull();
      });
    }
  });
});

describe('decodeServerMessage', () => {
  it('rejects bad JSON and bad shapes', () => {
    expect(() => decodeServerMessage('nope')).toThrow(DecodeError);
    expect(() => decodeServerMessage('[]')).toThrow(/expected an object/);
    expect(() => decodeServerMessage('{"type":"tick","room":"lobby","epoch":-1,"seq":1,"width":1,"height":1,"players":[]}')).toThrow(/epoch/);
    expect(() => decodeServerMessage('{"type":"tick","room":"lobby","epoch":1,"seq":1,"players":[{"id":"p","ack":"1","y":2}]}')).toThrow(/players\[0\]\.ack/);
    expect(() => decodeServerMessage('{"type":"welcome","protocol":1,"resume":"t"}')).toThrow(/player/);
  });

  it('reports unknown types as ignorable', () => {
    try {
      decodeServerMessage('{"type":"confetti"}');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DecodeError);
      expect((e as DecodeError).kind).toBe('unknown_type');
    }
  });

  it('fills informational defaults and takes other numbers and object lists as the game members', () => {
    const m = decodeServerMessage(
      '{"type":"tick","room":"lobby","epoch":1,"seq":2,"width":10,"height":10,"players":[{"id":"p1","x":1,"y":2,"extra":true}],"future":"x","things":[{"id":3,"hp":4}],"junk":[1,2]}',
    );
    expect(m).toEqual({
      type: 'tick',
      room: 'lobby',
      epoch: 1,
      seq: 2,
      owner: '',
      time: 0,
      g: { width: 10, height: 10 },
      players: [{ id: 'p1', name: '', ack: 0, conn: 0, online: true, away: 0, f: { x: 1, y: 2 } }],
      objects: { things: [{ id: 3, f: { hp: 4 } }] },
    });
  });

  it('reads welcome.game and welcome.params leniently', () => {
    const w = (extra: string) => decodeServerMessage(`{"type":"welcome","protocol":1,"player":"p1","resume":"t"${extra}}`);
    expect(w('')).toMatchObject({ game: '', params: {} });
    expect(w(',"game":"collect","params":{"width":1000,"tick_rate":20,"name":"x"}')).toMatchObject({
      game: 'collect',
      params: { width: 1000, tick_rate: 20 },
    });
    expect(w(',"game":7,"params":[1]')).toMatchObject({ game: '', params: {} });
  });
});

describe('encodeClientMessage', () => {
  it('encodes the documented shapes', () => {
    expect(JSON.parse(encodeClientMessage(helloMessage({ name: 'alice', resume: 'tok', room: 'lobby', seq: 41 })))).toEqual({
      type: 'hello',
      protocol: 1,
      name: 'alice',
      resume: 'tok',
      room: 'lobby',
      seq: 41,
    });
    expect(JSON.parse(encodeClientMessage(helloMessage({ name: 'bob', resume: null, seq: 1 })))).toEqual({ type: 'hello', protocol: 1, name: 'bob', seq: 1 });
    expect(encodeClientMessage({ type: 'input', seq: 42, keys: { up: true, down: false, left: false, right: true } })).toBe(
      '{"type":"input","seq":42,"keys":{"up":true,"down":false,"left":false,"right":true}}',
    );
    expect(encodeClientMessage(inputMessage(43, { data: { x: 120, y: 40 } }))).toBe('{"type":"input","seq":43,"data":{"x":120,"y":40}}');
    expect(encodeClientMessage({ type: 'ping', t: 12.5 })).toBe('{"type":"ping","t":12.5}');
  });

  it('refuses invalid messages', () => {
    expect(() => encodeClientMessage(helloMessage({ name: '', seq: 1 }))).toThrow();
    expect(() => encodeClientMessage(helloMessage({ name: 'a', seq: 0 }))).toThrow();
    expect(() => encodeClientMessage(helloMessage({ name: 'a', resume: 'tok' }))).toThrow(/seq/);
    expect(() => encodeClientMessage(helloMessage({ name: 'a', room: 'Lobby', seq: 1 }))).toThrow(/room/);
    expect(() => encodeClientMessage({ type: 'input', seq: 2 ** 53, keys: { up: false, down: false, left: false, right: false } })).toThrow();
    expect(() => encodeClientMessage({ type: 'ping', t: Number.NaN })).toThrow();
    expect(() => encodeClientMessage({ type: 'input', seq: 1, data: null })).toThrow(/data/);
    expect(() => encodeClientMessage({ type: 'input', seq: 1 })).toThrow(/data/);
    expect(() => encodeClientMessage({ type: 'input', seq: 1, data: 'x'.repeat(MAX_DATA_BYTES) })).toThrow(/data/);
    expect(checkClientMessage({ type: 'input', seq: 1, keys: { up: true }, data: 1 })).toBe('data');
  });
});

describe('names and rooms', () => {
  it('validName mirrors the server', () => {
    expect(validName('alice')).toBe(true);
    expect(validName('  alice  ')).toBe(true);
    expect(validName('Zoë 🚀 <script>&')).toBe(true);
    expect(validName('x'.repeat(32))).toBe(true);
    expect(validName('é'.repeat(32))).toBe(true);
    expect(validName('x'.repeat(33))).toBe(false);
    expect(validName('')).toBe(false);
    expect(validName('   ')).toBe(false);
    expect(validName('al\nice')).toBe(false);
    expect(validName('al\u200bice')).toBe(false);
    expect(validName('al\u00a0ice')).toBe(false);
    expect(validName('al\u0007ice')).toBe(false);
  });

  it('sanitizeName makes names valid', () => {
    expect(sanitizeName('  al\nice\u200b ')).toBe('alice');
    expect(sanitizeName('y'.repeat(40))).toBe('y'.repeat(32));
    expect(sanitizeName('\u0007')).toBe('');
    for (const s of ['  a  b  ', 'x\ty', '🚀'.repeat(40)]) expect(validName(sanitizeName(s))).toBe(true);
  });

  it('validRoom', () => {
    expect(validRoom('lobby')).toBe(true);
    expect(validRoom('room-2')).toBe(true);
    expect(validRoom('Lobby')).toBe(false);
    expect(validRoom('lobby.1')).toBe(false);
    expect(validRoom('')).toBe(false);
    expect(validRoom('r'.repeat(33))).toBe(false);
  });

  it('keysToMask matches the server bitmask', () => {
    expect(keysToMask({ up: true, down: false, left: false, right: true })).toBe(9);
    expect(keysToMask({ up: false, down: true, left: true, right: false })).toBe(6);
  });
});

describe('classifyClose', () => {
  it('retries 4000-4499', () => {
    for (const code of [4000, 4001, 4002, 4004, 4005, 4123, 4499]) expect(classifyClose(code).action, String(code)).toBe('retry');
    expect(classifyClose(4000).reason).toMatch(/draining/);
  });

  it('stops on 4500-4999 except 4501', () => {
    for (const code of [4500, 4502, 4503, 4504, 4777, 4999]) expect(classifyClose(code).action, String(code)).toBe('terminal');
    expect(classifyClose(4503).reason).toMatch(/taken over/);
    expect(classifyClose(4500).reason).toMatch(/protocol/);
  });

  it('resets the identity on 4501', () => {
    expect(classifyClose(4501).action).toBe('reset');
  });

  it('retries everything else', () => {
    for (const code of [1000, 1001, 1005, 1006, 1011, 1012, 3000, 3999, 1002]) expect(classifyClose(code).action, String(code)).toBe('retry');
  });
});
