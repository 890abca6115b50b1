// Connection management: endpoint list and rotation, full-jitter exponential
// backoff, connection generations, and a watchdog. Pure logic apart from the
// injected WebSocket factory, clock and random source, so it is unit-tested
// with fakes.

import { DELTA, FrameError, KEYFRAME, TickDecoder } from './frames';
import {
  classifyClose,
  decodeServerMessage,
  DecodeError,
  encodeClientMessage,
  type ClientMessage,
  type NodeInfo,
  type ServerMessage,
} from './protocol';

// ---------------------------------------------------------------------------
// Clock and randomness

export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Returns a number in [0, 1). */
export type RandomSource = () => number;

export const browserClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
};

// ---------------------------------------------------------------------------
// Backoff

export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
  random?: RandomSource;
}

/**
 * Full-jitter exponential backoff: the n-th consecutive retry (n from 0) waits
 * random() * min(cap, base * 2^n) milliseconds.
 */
export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  private readonly random: RandomSource;
  private n = 0;

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = opts.baseMs ?? 250;
    this.capMs = opts.capMs ?? 5000;
    this.random = opts.random ?? Math.random;
  }

  /** Consecutive retries since the last reset. */
  get attempt(): number {
    return this.n;
  }

  /** The upper bound of the next delay. */
  ceiling(): number {
    return Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.n, 30));
  }

  /** Returns the next delay in ms and counts the attempt. */
  next(): number {
    const r = this.random();
    const clamped = r < 0 ? 0 : r >= 1 ? 0.999999 : r;
    const d = Math.floor(clamped * this.ceiling());
    this.n++;
    return d;
  }

  reset(): void {
    this.n = 0;
  }
}

// ---------------------------------------------------------------------------
// Endpoints

/** The page origin's WebSocket endpoint: ws(s)://host/ws, matching http(s). */
export function originWsUrl(loc: { protocol: string; host: string }): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

/**
 * Normalizes a node URL to a ws:/wss: URL (http -> ws, https -> wss; a URL
 * without a path gets /ws). Returns null when it cannot be used.
 */
export function normalizeWsUrl(raw: string): string | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return null;
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return null;
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/ws';
  u.hash = '';
  return u.toString();
}

/**
 * The endpoints to try, in order: the page origin's /ws first, then the nodes
 * the server announced (kept current with every welcome/nodes message),
 * deduplicated. advance() rotates to the next one after a failure.
 */
export class EndpointList {
  private readonly origin: string;
  private readonly secure: boolean;
  private list: string[];
  private index = 0;

  constructor(originUrl: string) {
    this.origin = normalizeWsUrl(originUrl) ?? originUrl;
    this.secure = this.origin.startsWith('wss:');
    this.list = [this.origin];
  }

  /** Replaces the announced nodes. The current endpoint stays current if still listed. */
  setNodes(nodes: readonly (NodeInfo | string)[]): void {
    const cur = this.list[this.index];
    const next: string[] = [this.origin];
    for (const n of nodes) {
      const url = normalizeWsUrl(typeof n === 'string' ? n : n.url);
      if (url === null) continue;
      // A secure page cannot open ws: sockets (mixed content).
      if (this.secure && !url.startsWith('wss:')) continue;
      if (!next.includes(url)) next.push(url);
    }
    const oldIndex = this.index;
    this.list = next;
    const i = cur === undefined ? -1 : next.indexOf(cur);
    if (i >= 0) {
      this.index = i;
    } else {
      // The current endpoint went away: make advance() land on the one that
      // now sits where it was.
      const len = next.length;
      this.index = (Math.min(oldIndex, len) - 1 + len) % len;
    }
  }

  current(): string {
    return this.list[this.index] ?? this.origin;
  }

  /** Moves to the next endpoint (wrapping around) and returns it. */
  advance(): string {
    this.index = (this.index + 1) % this.list.length;
    return this.current();
  }

  all(): readonly string[] {
    return this.list;
  }
}

// ---------------------------------------------------------------------------
// Transport

/** The subset of the browser WebSocket that the transport uses. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  /** Set to 'arraybuffer': protocol 2's ticks are binary frames. */
  binaryType?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

const WS_OPEN = 1;

export type TransportState = 'connecting' | 'connected' | 'reconnecting' | 'stopped';

export interface TransportHooks {
  /** The socket opened: send hello. */
  onOpen?(): void;
  /** Every decoded server message of the current connection. */
  onMessage?(msg: ServerMessage): void;
  /** State or retry info changed. */
  onChange?(): void;
  /** 4501: forget the stored resume token and seq before the next hello. */
  onResetIdentity?(): void;
  /** A frame failed to decode (ignored otherwise). */
  onDecodeError?(err: DecodeError, text: string): void;
  /** Every text frame of the current connection, before decoding (for byte counts). */
  onText?(text: string): void;
  /** The size of every binary frame (a protocol 2 tick) of the current connection (for byte counts). */
  onBinary?(bytes: number): void;
}

export interface TransportOptions {
  endpoints: EndpointList;
  createSocket: WebSocketFactory;
  clock?: Clock;
  random?: RandomSource;
  hooks?: TransportHooks;
  baseMs?: number;
  capMs?: number;
  /** A connection open this long (ms) after its welcome resets the backoff. */
  stableMs?: number;
  /**
   * No tick for this long (ms) after the welcome: dead. A room ticks 20 times a second and a failover takes
   * well under a second, so a silence this long means this node is frozen or cut off from the room's owner
   * (the node closes sockets itself when it knows it is cut off): move to another node.
   */
  watchdogMs?: number;
  /**
   * The protocol to ask for in hello (default 2: binary keyframes and deltas). A node that does not speak it
   * answers bad_protocol and closes with 4500 before any welcome: the transport then uses protocol 1 from the
   * next connection on, for as long as it lives.
   */
  protocol?: number;
  /** Tick objects the protocol 2 decoder reuses in turn (default 48): more than a consumer keeps. */
  ringSize?: number;
  /** No welcome this long (ms) after connecting: dead. */
  connectTimeoutMs?: number;
}

export class Transport {
  readonly endpoints: EndpointList;
  readonly backoff: Backoff;
  private readonly createSocket: WebSocketFactory;
  private readonly clock: Clock;
  private readonly hooks: TransportHooks;
  private readonly stableMs: number;
  private readonly watchdogMs: number;
  private readonly connectTimeoutMs: number;

  private ws: WebSocketLike | null = null;
  private gen = 0;
  private _state: TransportState = 'connecting';
  private everWelcomed = false;
  private welcomedAt: number | null = null;
  private lastAliveAt = 0;
  private watchdogTimer: TimerHandle | null = null;
  private retryTimer: TimerHandle | null = null;
  private resetUsed = false;
  private started = false;
  private readonly decoder: TickDecoder;

  /** The protocol of the next hello (and of the current connection). */
  protocol: number;

  /** Clock time of the next connection attempt while waiting, else null. */
  nextRetryAt: number | null = null;
  /** The endpoint of the current (or last) socket. */
  url = '';
  /** Why the last connection ended. */
  lastCloseReason = '';
  lastCloseCode = 0;
  /** The reason for 'stopped'. */
  stopReason = '';
  stopCode = 0;

  constructor(opts: TransportOptions) {
    this.endpoints = opts.endpoints;
    this.createSocket = opts.createSocket;
    this.clock = opts.clock ?? browserClock;
    this.hooks = opts.hooks ?? {};
    const b: BackoffOptions = {};
    if (opts.baseMs !== undefined) b.baseMs = opts.baseMs;
    if (opts.capMs !== undefined) b.capMs = opts.capMs;
    if (opts.random !== undefined) b.random = opts.random;
    this.backoff = new Backoff(b);
    this.stableMs = opts.stableMs ?? 10_000;
    this.watchdogMs = opts.watchdogMs ?? 1000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
    this.protocol = opts.protocol ?? 2;
    this.decoder = new TickDecoder(opts.ringSize ?? 48);
  }

  get state(): TransportState {
    return this._state;
  }

  /** The current connection generation; callbacks of older sockets are ignored. */
  get generation(): number {
    return this.gen;
  }

  /** Consecutive failed attempts since the last stable connection. */
  get attempt(): number {
    return this.backoff.attempt;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  /** Stops for good (terminal close codes call this too). */
  stop(reason = 'stopped', code = 0): void {
    if (this._state === 'stopped') return;
    this.stopReason = reason;
    this.stopCode = code;
    this.teardownSocket(1000, 'client stopped');
    this.clearRetry();
    this.setState('stopped');
  }

  /** Sends on the current socket; false when not open. */
  send(msg: ClientMessage): boolean {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WS_OPEN) return false;
    ws.send(encodeClientMessage(msg));
    return true;
  }

  /** True when a socket is open (hello may not be answered yet). */
  get open(): boolean {
    return this.ws !== null && this.ws.readyState === WS_OPEN;
  }

  // -------------------------------------------------------------------------

  private connect(): void {
    if (this._state === 'stopped') return;
    this.clearRetry();
    const g = ++this.gen;
    this.url = this.endpoints.current();
    this.welcomedAt = null;
    this.lastAliveAt = this.clock.now();
    let ws: WebSocketLike;
    try {
      ws = this.createSocket(this.url);
    } catch (e) {
      // e.g. a malformed URL: treat like a failed connection.
      this.ws = null;
      this.onSocketClosed(g, 1006, `cannot connect: ${(e as Error).message}`);
      return;
    }
    this.ws = ws;
    try {
      ws.binaryType = 'arraybuffer';
    } catch {
      /* a socket without binary frames: protocol 1 only */
    }
    this.decoder.reset(); // a new connection starts with a keyframe
    ws.onopen = () => {
      if (g !== this.gen) return;
      this.hooks.onOpen?.();
    };
    ws.onmessage = (ev) => {
      if (g !== this.gen) return;
      this.onFrame(ev.data);
    };
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = (ev) => {
      if (g !== this.gen) return;
      this.onSocketClosed(g, ev.code, ev.reason);
    };
    this.armWatchdog(this.connectTimeoutMs);
    this.hooks.onChange?.();
  }

  private onFrame(data: unknown): void {
    if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
      this.onBinaryFrame(data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return;
    }
    if (typeof data !== 'string') return;
    this.hooks.onText?.(data);
    let msg: ServerMessage;
    try {
      msg = decodeServerMessage(data);
    } catch (e) {
      if (e instanceof DecodeError) {
        this.hooks.onDecodeError?.(e, data);
        return;
      }
      throw e;
    }
    switch (msg.type) {
      case 'welcome':
        this.everWelcomed = true;
        this.resetUsed = false;
        this.welcomedAt = this.clock.now();
        this.lastAliveAt = this.welcomedAt;
        this.endpoints.setNodes(msg.nodes);
        this.setState('connected');
        break;
      case 'nodes':
        this.endpoints.setNodes(msg.nodes);
        break;
      case 'tick':
        this.lastAliveAt = this.clock.now();
        break;
      default:
        break;
    }
    this.hooks.onMessage?.(msg);
  }

  /** A protocol 2 tick: the decoder's state after it, as a decoded tick. */
  private onBinaryFrame(b: Uint8Array): void {
    this.hooks.onBinary?.(b.byteLength);
    // A frame of a kind this client does not know is ignored, as a client ignores what it does not know.
    if (b.byteLength === 0 || (b[0] !== KEYFRAME && b[0] !== DELTA)) return;
    let tick: ServerMessage;
    try {
      tick = this.decoder.apply(b);
    } catch (e) {
      if (!(e instanceof FrameError)) throw e;
      // The ticks after it would not apply either: start over on a new connection, which begins with a keyframe.
      this.hooks.onDecodeError?.(new DecodeError(`tick frame: ${e.message}`, 'shape'), '');
      this.onSocketClosed(this.gen, 1002, `a tick frame that does not decode: ${e.message}`);
      return;
    }
    this.lastAliveAt = this.clock.now();
    this.hooks.onMessage?.(tick);
  }

  private onSocketClosed(g: number, code: number, reason: string): void {
    if (g !== this.gen || this._state === 'stopped') return;
    if (code === 4500 && this.protocol > 1 && this.welcomedAt === null) {
      // A node that does not speak this protocol (one from before protocol 2, during a rolling upgrade):
      // protocol 1 from now on, at once.
      this.teardownSocket();
      this.protocol = 1;
      this.lastCloseCode = code;
      this.lastCloseReason = `the node speaks protocol 1 only: using it${reason !== '' ? ` (${reason})` : ''}`;
      this.retryTimer = this.clock.setTimeout(() => {
        this.retryTimer = null;
        this.connect();
      }, 0);
      this.hooks.onChange?.();
      return;
    }
    const cls = classifyClose(code);
    const stable = this.welcomedAt !== null && this.clock.now() - this.welcomedAt >= this.stableMs;
    this.teardownSocket();
    this.lastCloseCode = code;
    this.lastCloseReason = reason !== '' ? `${cls.reason}: ${reason}` : cls.reason;
    switch (cls.action) {
      case 'terminal':
        this.stop(cls.reason, code);
        return;
      case 'reset':
        if (this.resetUsed) {
          this.stop(cls.reason, code);
          return;
        }
        // Documented choice: a rejected resume token is forgotten (with its
        // seq counter) and the client reconnects once as a new player. A
        // second 4501 before any welcome is terminal.
        this.resetUsed = true;
        this.hooks.onResetIdentity?.();
        break;
      case 'retry':
        break;
    }
    if (stable) this.backoff.reset();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    const delay = this.backoff.next();
    this.endpoints.advance();
    this.setState(this.everWelcomed ? 'reconnecting' : 'connecting', false);
    this.nextRetryAt = this.clock.now() + delay;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      this.nextRetryAt = null;
      this.connect();
    }, delay);
    this.hooks.onChange?.();
  }

  private armWatchdog(ms: number): void {
    this.watchdogTimer = this.clock.setTimeout(() => this.onWatchdog(), Math.max(1, ms));
  }

  private onWatchdog(): void {
    this.watchdogTimer = null;
    if (this.ws === null || this._state === 'stopped') return;
    const wasWelcomed = this.welcomedAt !== null;
    const limit = wasWelcomed ? this.watchdogMs : this.connectTimeoutMs;
    const idle = this.clock.now() - this.lastAliveAt;
    if (idle < limit) {
      this.armWatchdog(limit - idle);
      return;
    }
    // Dead connection: abandon the socket now (its close event, whenever it
    // comes, belongs to an old generation and is ignored) and retry.
    const g = this.gen;
    this.onSocketClosed(g, 1006, wasWelcomed ? `no tick for ${this.watchdogMs} ms` : 'connect timeout');
  }

  private teardownSocket(code = 3000, reason = 'abandoned'): void {
    this.gen++;
    if (this.watchdogTimer !== null) {
      this.clock.clearTimeout(this.watchdogTimer);
      this.watchdogTimer = null;
    }
    const ws = this.ws;
    this.ws = null;
    this.welcomedAt = null;
    if (ws !== null) {
      ws.onopen = null;
      ws.onmessage = null;
      ws.onerror = null;
      ws.onclose = null;
      try {
        ws.close(code, reason);
      } catch {
        /* already closed */
      }
    }
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) {
      this.clock.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.nextRetryAt = null;
  }

  private setState(s: TransportState, notify = true): void {
    if (this._state === s) return;
    this._state = s;
    if (notify) this.hooks.onChange?.();
  }
}
