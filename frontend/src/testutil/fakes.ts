// Test doubles: a manual clock with timers, a scripted random source and a
// fake WebSocket whose callbacks can be fired even after the transport has let
// go of the socket (to check that stale callbacks are ignored).

import type { TickMessage } from '../protocol';
import type { Clock, TimerHandle, WebSocketLike } from '../transport';

export class FakeClock implements Clock {
  t = 0;
  private nextId = 1;
  private timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(h: TimerHandle): void {
    this.timers.delete(h as number);
  }

  pending(): number {
    return this.timers.size;
  }

  /** Advances time by ms, running due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.timers) if (e[1].at <= end && (best === null || e[1].at < best[1].at)) best = e;
      if (best === null) break;
      this.timers.delete(best[0]);
      this.t = Math.max(this.t, best[1].at);
      best[1].fn();
    }
    this.t = end;
  }
}

/** Returns the given values in turn, then the last one forever. */
export function scriptedRandom(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0;
}

type Handler<E> = ((ev: E) => void) | null;

export class FakeSocket implements WebSocketLike {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 3;

  readyState = FakeSocket.CONNECTING;
  binaryType = 'blob';
  sent: string[] = [];
  closedWith: { code?: number; reason?: string } | null = null;

  // Every handler ever assigned, like addEventListener: firing an event on an
  // abandoned socket still reaches the transport's old closures.
  private readonly all = { open: [] as ((ev: unknown) => void)[], close: [] as ((ev: { code: number; reason: string }) => void)[], message: [] as ((ev: { data: unknown }) => void)[] };
  private _onopen: Handler<unknown> = null;
  private _onclose: Handler<{ code: number; reason: string }> = null;
  private _onmessage: Handler<{ data: unknown }> = null;
  onerror: Handler<unknown> = null;

  constructor(readonly url: string) {}

  get onopen(): Handler<unknown> {
    return this._onopen;
  }
  set onopen(h: Handler<unknown>) {
    this._onopen = h;
    if (h) this.all.open.push(h);
  }
  get onclose(): Handler<{ code: number; reason: string }> {
    return this._onclose;
  }
  set onclose(h: Handler<{ code: number; reason: string }>) {
    this._onclose = h;
    if (h) this.all.close.push(h);
  }
  get onmessage(): Handler<{ data: unknown }> {
    return this._onmessage;
  }
  set onmessage(h: Handler<{ data: unknown }>) {
    this._onmessage = h;
    if (h) this.all.message.push(h);
  }

  send(data: string): void {
    if (this.readyState !== FakeSocket.OPEN) throw new Error('send on a socket that is not open');
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = FakeSocket.CLOSED;
  }

  // Server side -------------------------------------------------------------

  fireOpen(): void {
    this.readyState = FakeSocket.OPEN;
    for (const h of this.all.open) h({});
  }

  fireMessage(msg: unknown): void {
    const data = typeof msg === 'string' ? msg : JSON.stringify(msg);
    for (const h of this.all.message) h({ data });
  }

  /** A binary frame, as a browser with binaryType 'arraybuffer' delivers it. */
  fireBinary(bytes: Uint8Array): void {
    const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    for (const h of this.all.message) h({ data });
  }

  fireClose(code: number, reason = ''): void {
    this.readyState = FakeSocket.CLOSED;
    for (const h of this.all.close) h({ code, reason });
  }
}

export function welcome(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'welcome',
    protocol: 1,
    player: 'p0123456789abcdef',
    resume: 'tok',
    room: 'lobby',
    node: 'n1',
    nodes: [{ name: 'n1', url: 'ws://127.0.0.1:8081/ws' }],
    ack: 0,
    ...over,
  };
}

/** An arena tick with the given players (position and velocity; the rest defaulted). */
export function tick(epoch: number, seq: number, players: { id: string; x: number; y: number; vx?: number; vy?: number; online?: boolean }[] = []): TickMessage {
  return {
    type: 'tick',
    room: 'lobby',
    epoch,
    seq,
    owner: 'n1',
    time: 0,
    g: { width: 1000, height: 1000 },
    players: players.map((p) => ({
      id: p.id,
      name: p.id,
      ack: 0,
      conn: 1,
      online: p.online ?? true,
      away: 0,
      f: { x: p.x, y: p.y, vx: p.vx ?? 0, vy: p.vy ?? 0, keys: 0 },
    })),
    objects: {},
  };
}
