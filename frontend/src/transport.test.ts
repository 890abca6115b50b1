import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { splitStream } from './frames';
import type { ServerMessage } from './protocol';
import { Backoff, EndpointList, normalizeWsUrl, originWsUrl, Transport } from './transport';
import { FakeClock, FakeSocket, scriptedRandom, tick, welcome } from './testutil/fakes';

describe('Backoff', () => {
  it('doubles the ceiling from 250 ms up to the 5 s cap', () => {
    const b = new Backoff({ random: () => 0.999999 });
    const ceilings: number[] = [];
    for (let i = 0; i < 8; i++) {
      ceilings.push(b.ceiling());
      b.next();
    }
    expect(ceilings).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('is full jitter: random() * ceiling, within [0, ceiling)', () => {
    const b = new Backoff({ random: scriptedRandom(0, 0.5, 0.25, 0.999, 1) });
    expect(b.next()).toBe(0); // 0 * 250
    expect(b.next()).toBe(250); // 0.5 * 500
    expect(b.next()).toBe(250); // 0.25 * 1000
    expect(b.next()).toBe(1998); // floor(0.999 * 2000)
    expect(b.next()).toBeLessThan(4000); // random() == 1 is clamped below the ceiling
    expect(b.attempt).toBe(5);
  });

  it('stays within bounds for any random value and many attempts', () => {
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const b = new Backoff({ random: rnd });
    for (let i = 0; i < 1000; i++) {
      const cap = b.ceiling();
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(cap);
      expect(cap).toBeLessThanOrEqual(5000);
    }
  });

  it('reset starts over at the base', () => {
    const b = new Backoff({ random: () => 0.999999 });
    for (let i = 0; i < 6; i++) b.next();
    expect(b.ceiling()).toBe(5000);
    b.reset();
    expect(b.attempt).toBe(0);
    expect(b.ceiling()).toBe(250);
  });
});

describe('endpoints', () => {
  it('derives the origin endpoint from the page', () => {
    expect(originWsUrl({ protocol: 'http:', host: '127.0.0.1:8081' })).toBe('ws://127.0.0.1:8081/ws');
    expect(originWsUrl({ protocol: 'https:', host: 'game.example' })).toBe('wss://game.example/ws');
  });

  it('normalizes node URLs', () => {
    expect(normalizeWsUrl('ws://127.0.0.1:8082/ws')).toBe('ws://127.0.0.1:8082/ws');
    expect(normalizeWsUrl('http://127.0.0.1:8082')).toBe('ws://127.0.0.1:8082/ws');
    expect(normalizeWsUrl('https://a.example/')).toBe('wss://a.example/ws');
    expect(normalizeWsUrl('WS://A.EXAMPLE:80/ws')).toBe('ws://a.example/ws');
    expect(normalizeWsUrl('ftp://x/ws')).toBeNull();
    expect(normalizeWsUrl('not a url')).toBeNull();
  });

  it('puts the origin first, then the nodes, deduplicated', () => {
    const e = new EndpointList('ws://127.0.0.1:8081/ws');
    expect(e.all()).toEqual(['ws://127.0.0.1:8081/ws']);
    e.setNodes([
      { name: 'n1', url: 'ws://127.0.0.1:8081/ws' },
      { name: 'n2', url: 'ws://127.0.0.1:8082/ws' },
      { name: 'n2b', url: 'ws://127.0.0.1:8082/ws' },
      { name: 'n3', url: 'http://127.0.0.1:8083' },
      { name: 'bad', url: '::' },
    ]);
    expect(e.all()).toEqual(['ws://127.0.0.1:8081/ws', 'ws://127.0.0.1:8082/ws', 'ws://127.0.0.1:8083/ws']);
    expect(e.current()).toBe('ws://127.0.0.1:8081/ws');
  });

  it('rotates in order and wraps around', () => {
    const e = new EndpointList('ws://o/ws');
    e.setNodes(['ws://a/ws', 'ws://b/ws']);
    expect([e.current(), e.advance(), e.advance(), e.advance(), e.advance()]).toEqual(['ws://o/ws', 'ws://a/ws', 'ws://b/ws', 'ws://o/ws', 'ws://a/ws']);
  });

  it('keeps the current endpoint across updates of the nodes list', () => {
    const e = new EndpointList('ws://o/ws');
    e.setNodes(['ws://a/ws', 'ws://b/ws', 'ws://c/ws']);
    e.advance();
    e.advance(); // b
    e.setNodes(['ws://c/ws', 'ws://b/ws', 'ws://d/ws']);
    expect(e.current()).toBe('ws://b/ws');
    expect(e.advance()).toBe('ws://d/ws');
    expect(e.advance()).toBe('ws://o/ws');
  });

  it('continues after the position of a node that left the list', () => {
    const e = new EndpointList('ws://o/ws');
    e.setNodes(['ws://a/ws', 'ws://b/ws', 'ws://c/ws']);
    e.advance(); // a
    e.setNodes(['ws://b/ws', 'ws://c/ws']); // a is gone
    expect(e.advance()).toBe('ws://b/ws');
    // An empty list leaves the origin only.
    e.setNodes([]);
    expect(e.all()).toEqual(['ws://o/ws']);
    expect(e.advance()).toBe('ws://o/ws');
  });

  it('drops insecure node URLs on a secure page', () => {
    const e = new EndpointList('wss://game.example/ws');
    e.setNodes(['ws://10.0.0.1/ws', 'wss://n2.example/ws']);
    expect(e.all()).toEqual(['wss://game.example/ws', 'wss://n2.example/ws']);
  });
});

interface Harness {
  clock: FakeClock;
  sockets: FakeSocket[];
  t: Transport;
  messages: ServerMessage[];
  opens: number;
  resets: number;
  last(): FakeSocket;
}

function harness(random: () => number = () => 0.5, protocol?: number): Harness {
  const clock = new FakeClock();
  const sockets: FakeSocket[] = [];
  const h: Harness = {
    clock,
    sockets,
    messages: [],
    opens: 0,
    resets: 0,
    last: () => sockets[sockets.length - 1] as FakeSocket,
    t: undefined as unknown as Transport,
  };
  const endpoints = new EndpointList('ws://origin/ws');
  h.t = new Transport({
    endpoints,
    clock,
    random,
    ...(protocol === undefined ? {} : { protocol }),
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    hooks: {
      onOpen: () => {
        h.opens++;
        h.t.send({ type: 'hello', protocol: h.t.protocol, name: 'alice', seq: h.opens });
      },
      onMessage: (m) => h.messages.push(m),
      onResetIdentity: () => h.resets++,
    },
  });
  return h;
}

/** Advances the clock until the transport creates its next socket. */
function nextSocket(h: Harness): FakeSocket {
  const n = h.sockets.length;
  for (let i = 0; i < 10_000 && h.sockets.length === n; i++) h.clock.advance(1);
  expect(h.sockets.length).toBe(n + 1);
  return h.last();
}

/** Opens the last socket and completes the handshake. */
function establish(h: Harness, nodes = [{ name: 'n1', url: 'ws://origin/ws' }, { name: 'n2', url: 'ws://n2/ws' }, { name: 'n3', url: 'ws://n3/ws' }]): FakeSocket {
  const s = h.last();
  s.fireOpen();
  s.fireMessage(welcome({ nodes }));
  return s;
}

describe('Transport', () => {
  it('connects to the origin first and sends hello on open', () => {
    const h = harness();
    h.t.start();
    expect(h.sockets).toHaveLength(1);
    expect(h.last().url).toBe('ws://origin/ws');
    expect(h.t.state).toBe('connecting');
    establish(h);
    expect(JSON.parse(h.last().sent[0] as string)).toMatchObject({ type: 'hello', seq: 1 });
    expect(h.t.state).toBe('connected');
    expect(h.t.endpoints.all()).toEqual(['ws://origin/ws', 'ws://n2/ws', 'ws://n3/ws']);
  });

  it('rotates through the endpoints with backoff on failures', () => {
    const h = harness(() => 0.999999);
    h.t.start();
    establish(h);
    h.last().fireClose(1006);
    expect(h.t.state).toBe('reconnecting');
    expect(h.t.nextRetryAt).toBe(249); // floor(0.999999 * 250)
    h.clock.advance(248);
    expect(h.sockets).toHaveLength(1);
    h.clock.advance(1);
    expect(h.sockets).toHaveLength(2);
    expect(h.last().url).toBe('ws://n2/ws');
    h.last().fireClose(1006); // never opened
    expect(h.t.nextRetryAt).toBe(249 + 499);
    h.clock.advance(499);
    expect(h.last().url).toBe('ws://n3/ws');
    h.last().fireClose(4004);
    h.clock.advance(999);
    expect(h.last().url).toBe('ws://origin/ws');
    expect(h.t.attempt).toBe(3);
  });

  it('ignores callbacks of an old socket (connection generations)', () => {
    const h = harness();
    h.t.start();
    const old = establish(h);
    const gen = h.t.generation;
    old.fireClose(1006);
    const fresh = nextSocket(h);
    expect(fresh).not.toBe(old);
    expect(h.t.generation).toBeGreaterThan(gen);
    const count = h.messages.length;
    // The old socket keeps talking: nothing of it may reach the client.
    old.fireMessage(tick(9, 9));
    old.fireOpen();
    old.fireClose(4500);
    expect(h.messages.length).toBe(count);
    expect(h.opens).toBe(1);
    expect(h.t.state).toBe('reconnecting');
    expect(h.sockets).toHaveLength(2);
    // The new one works.
    establish(h);
    expect(h.opens).toBe(2);
    expect(h.t.state).toBe('connected');
  });

  it('treats no tick for 1 s after the welcome as a dead connection', () => {
    const h = harness(() => 0);
    h.t.start();
    const s = establish(h);
    for (let i = 0; i < 10; i++) {
      h.clock.advance(999);
      s.fireMessage(tick(1, i + 1));
    }
    expect(h.sockets).toHaveLength(1);
    h.clock.advance(999);
    expect(h.t.state).toBe('connected');
    h.clock.advance(1);
    expect(s.closedWith).not.toBeNull();
    expect(h.t.state).toBe('reconnecting');
    expect(h.t.lastCloseReason).toMatch(/no tick/);
    h.clock.advance(0);
    expect(h.sockets).toHaveLength(2);
    // The abandoned socket's late close event is ignored.
    s.fireClose(1006);
    expect(h.sockets).toHaveLength(2);
    expect(h.clock.pending()).toBe(1); // only the new socket's watchdog
  });

  it('counts the welcome as a sign of life: the first tick may take up to the watchdog', () => {
    const h = harness(() => 0);
    h.t.start();
    h.clock.advance(2500); // a slow handshake, within the connect timeout
    const s = establish(h);
    h.clock.advance(999);
    expect(h.t.state).toBe('connected');
    s.fireMessage(tick(1, 1));
    h.clock.advance(999);
    expect(h.t.state).toBe('connected');
    h.clock.advance(1);
    expect(h.t.state).toBe('reconnecting');
  });

  it('times out a connection attempt that never opens', () => {
    const h = harness(() => 0);
    h.t.start();
    h.clock.advance(2999);
    expect(h.sockets).toHaveLength(1);
    h.clock.advance(1);
    expect(h.t.lastCloseReason).toMatch(/connect timeout/);
    h.clock.advance(0);
    expect(h.sockets).toHaveLength(2);
  });

  it('resets the backoff after a connection stable for 10 s', () => {
    const h = harness(() => 0.999999);
    h.t.start();
    h.last().fireClose(1006);
    h.clock.advance(250);
    h.last().fireClose(1006);
    h.clock.advance(500);
    expect(h.t.attempt).toBe(2);
    // Short-lived connection: no reset.
    let s = establish(h);
    h.clock.advance(900);
    s.fireMessage(tick(1, 1));
    h.clock.advance(900);
    s.fireClose(4000);
    expect(h.t.attempt).toBe(3);
    expect(h.t.nextRetryAt! - h.clock.now()).toBe(999);
    h.clock.advance(1000);
    // Stable for 10 s: the next retry starts from the base again.
    s = establish(h);
    for (let i = 0; i < 11; i++) {
      h.clock.advance(950);
      s.fireMessage(tick(1, i + 2));
    }
    s.fireClose(1006);
    expect(h.t.attempt).toBe(1);
    expect(h.t.nextRetryAt! - h.clock.now()).toBe(249);
  });

  it('stops on terminal close codes', () => {
    const h = harness();
    h.t.start();
    establish(h).fireClose(4503);
    expect(h.t.state).toBe('stopped');
    expect(h.t.stopCode).toBe(4503);
    expect(h.t.stopReason).toMatch(/taken over/);
    h.clock.advance(60_000);
    expect(h.sockets).toHaveLength(1);
  });

  it('on 4501 resets the identity and reconnects once, then stops', () => {
    const h = harness();
    h.t.start();
    h.last().fireOpen();
    h.last().fireClose(4501);
    expect(h.resets).toBe(1);
    expect(h.t.state).toBe('connecting');
    nextSocket(h);
    h.last().fireOpen();
    h.last().fireClose(4501);
    expect(h.resets).toBe(1);
    expect(h.t.state).toBe('stopped');
    expect(h.t.stopCode).toBe(4501);
  });

  it('allows another 4501 reset after a successful welcome', () => {
    const h = harness();
    h.t.start();
    h.last().fireClose(4501);
    nextSocket(h);
    establish(h).fireClose(4501);
    expect(h.resets).toBe(2);
    expect(h.t.state).toBe('reconnecting');
  });

  it('keeps the endpoint list current from nodes messages', () => {
    const h = harness();
    h.t.start();
    const s = establish(h, [{ name: 'n1', url: 'ws://origin/ws' }]);
    s.fireMessage({ type: 'nodes', nodes: [{ name: 'n4', url: 'ws://n4/ws' }] });
    expect(h.t.endpoints.all()).toEqual(['ws://origin/ws', 'ws://n4/ws']);
    s.fireClose(4000);
    expect(nextSocket(h).url).toBe('ws://n4/ws');
  });

  it('ignores undecodable frames and passes messages through', () => {
    const h = harness();
    h.t.start();
    const s = establish(h);
    s.fireMessage('not json');
    s.fireMessage('{"type":"future"}');
    s.fireMessage({ type: 'pong', t: 5 });
    expect(h.messages.map((m) => m.type)).toEqual(['welcome', 'pong']);
    expect(h.t.state).toBe('connected');
  });

  it('send returns false while not open; stop closes the socket', () => {
    const h = harness();
    h.t.start();
    expect(h.t.send({ type: 'ping', t: 1 })).toBe(false);
    const s = establish(h);
    expect(h.t.send({ type: 'ping', t: 1 })).toBe(true);
    h.t.stop('bye');
    expect(s.closedWith?.code).toBe(1000);
    expect(h.t.state).toBe('stopped');
    h.clock.advance(60_000);
    expect(h.sockets).toHaveLength(1);
  });
});

// The golden arena stream (pkg/protocol/testdata/fixtures/frames): what a protocol 2 socket receives.
const ARENA = splitStream(new Uint8Array(readFileSync(fileURLToPath(new URL('../../pkg/protocol/testdata/fixtures/frames/arena.frames', import.meta.url)))));

describe('Transport, protocol 2', () => {
  it('asks for protocol 2, reads binary ticks into decoded ticks and keeps the watchdog fed', () => {
    const h = harness();
    h.t.start();
    expect(h.last().binaryType).toBe('arraybuffer');
    const s = establish(h);
    expect(JSON.parse(s.sent[0] as string)).toMatchObject({ type: 'hello', protocol: 2 });
    for (let i = 0; i < 5; i++) {
      h.clock.advance(600); // under the 1 s watchdog only because the ticks come
      s.fireBinary(ARENA[i] as Uint8Array);
    }
    const ticks = h.messages.filter((m) => m.type === 'tick');
    expect(ticks).toHaveLength(5);
    expect(ticks.map((t) => (t.type === 'tick' ? t.seq : 0))).toEqual([1, 2, 3, 4, 5]);
    expect(h.t.state).toBe('connected');
    expect(h.sockets).toHaveLength(1);
  });

  it('falls back to protocol 1 at once when a node closes with 4500 before its welcome, and stays there', () => {
    const h = harness();
    h.t.start();
    const s = h.last();
    s.fireOpen();
    expect(JSON.parse(s.sent[0] as string)).toMatchObject({ protocol: 2 });
    s.fireMessage({ type: 'error', code: 'bad_protocol', message: 'this server speaks protocol 1' });
    s.fireClose(4500);
    expect(h.t.state).not.toBe('stopped');
    const s2 = nextSocket(h);
    expect(h.clock.now()).toBeLessThanOrEqual(1);
    s2.fireOpen();
    expect(JSON.parse(s2.sent[0] as string)).toMatchObject({ protocol: 1 });
    s2.fireMessage(welcome());
    expect(h.t.state).toBe('connected');
    // A later reconnect keeps protocol 1; a 4500 answering protocol 1 is terminal, as before.
    s2.fireClose(1006);
    const s3 = nextSocket(h);
    s3.fireOpen();
    expect(JSON.parse(s3.sent[0] as string)).toMatchObject({ protocol: 1 });
    s3.fireClose(4500);
    expect(h.t.state).toBe('stopped');
  });

  it('starts over on a new connection when a frame does not apply (it begins with a keyframe)', () => {
    const h = harness();
    h.t.start();
    const s = establish(h);
    s.fireBinary(ARENA[0] as Uint8Array);
    s.fireBinary(ARENA[2] as Uint8Array); // frame 1 missing: a delta of another base
    expect(h.t.state).toBe('reconnecting');
    const s2 = nextSocket(h);
    establish(h);
    s2.fireBinary(ARENA[1] as Uint8Array); // a delta first on a new connection does not apply either
    expect(h.t.state).toBe('reconnecting');
    const s3 = nextSocket(h);
    establish(h);
    s3.fireBinary(ARENA[0] as Uint8Array);
    s3.fireBinary(ARENA[1] as Uint8Array);
    expect(h.t.state).toBe('connected');
    expect(h.messages.filter((m) => m.type === 'tick')).toHaveLength(3);
  });

  it('speaks protocol 1 when asked to', () => {
    const h = harness(() => 0.5, 1);
    h.t.start();
    const s = establish(h);
    expect(JSON.parse(s.sent[0] as string)).toMatchObject({ protocol: 1 });
    s.fireMessage(tick(1, 1));
    expect(h.messages.filter((m) => m.type === 'tick')).toHaveLength(1);
  });
});
