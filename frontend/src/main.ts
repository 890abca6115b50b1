// The game page: wires transport, session, snapshots, input, renderer and
// status panel together, and exposes read-only state on window.__tickmesh for
// tests.

import './style.css';
import { attachKeyboard, KeyState } from './input';
import { startLoop } from './loop';
import { DEFAULT_ROOM, helloMessage, sanitizeName, validRoom, type Keys, type ServerMessage, type TickMessage } from './protocol';
import { Renderer } from './render';
import { browserSessionStorage, Session } from './session';
import { SnapshotBuffer, type RenderPlayer } from './snapshots';
import { RateMeter, StatusPanel, type StatusModel } from './status';
import { EndpointList, originWsUrl, Transport, type TransportState, type WebSocketLike } from './transport';

const PING_INTERVAL_MS = 2000;
const STATUS_INTERVAL_MS = 200;

function randomName(): string {
  const n = Math.floor(Math.random() * 0x10000);
  return `player-${n.toString(16).padStart(4, '0')}`;
}

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`missing #${id}`);
  return e as T;
}

const params = new URLSearchParams(location.search);
const room = (params.get('room') || DEFAULT_ROOM).toLowerCase();
const name = sanitizeName(params.get('name') ?? '') || randomName();

const session = new Session(browserSessionStorage(), room);
const snapshots = new SnapshotBuffer();
const tickMeter = new RateMeter();
const renderer = new Renderer(el<HTMLCanvasElement>('game'));
const panel = new StatusPanel(el('status'), el('banner'));

let node = '';
let owner = '';
let rttMs: number | null = null;
let lastError = '';
let me: { x: number; y: number } | null = null;
let onlineCount = 0;
let playerCount = 0;

const transport = new Transport({
  endpoints: new EndpointList(originWsUrl(location)),
  // The DOM WebSocket has these members with narrower event types (Event,
  // CloseEvent, MessageEvent); the transport reads only code/reason/data.
  createSocket: (url) => new WebSocket(url) as unknown as WebSocketLike,
  hooks: {
    onOpen: () => {
      transport.send(helloMessage({ name, room, seq: session.nextSeq(), resume: session.resume }));
    },
    onMessage: (msg) => handle(msg),
    onResetIdentity: () => {
      // 4501: the server does not know our resume token. Forget it and its
      // seq counter; the next hello joins as a new player (once: a second
      // 4501 in a row is terminal, see Transport).
      session.clear();
      me = null;
    },
    onDecodeError: (err) => {
      lastError = `bad frame: ${err.message}`;
    },
  },
});

const keys = new KeyState((k) => sendKeys(k));

// The latest input sent on this connection, until a tick shows it applied (docs/PROTOCOL.md: an input still
// unacknowledged after a second, e.g. dropped as rate_limited, is resent unchanged).
let pending: { seq: number; keys: Keys; sentAt: number } | null = null;
const RESEND_AFTER_MS = 1000;

function sendKeys(k: Keys): void {
  if (transport.state !== 'connected') return; // sent after the next welcome
  const seq = session.nextSeq();
  transport.send({ type: 'input', seq, keys: k });
  pending = { seq, keys: k, sentAt: performance.now() };
}

function resendIfUnacknowledged(ack: number, now: number): void {
  if (pending === null) return;
  if (ack >= pending.seq) {
    pending = null;
  } else if (now - pending.sentAt >= RESEND_AFTER_MS && transport.state === 'connected') {
    transport.send({ type: 'input', seq: pending.seq, keys: pending.keys });
    pending.sentAt = now;
  }
}

function handle(msg: ServerMessage): void {
  switch (msg.type) {
    case 'welcome':
      session.welcome(msg.player, msg.resume, msg.ack);
      node = msg.node;
      pending = null; // a new connection: its own input below replaces anything unacknowledged
      // Once after every (re)connect: the server learns the keys held now.
      sendKeys(keys.keys);
      break;
    case 'tick':
      onTick(msg);
      break;
    case 'pong': {
      if (msg.t === null) break;
      const rtt = performance.now() - msg.t;
      if (rtt >= 0 && rtt < 60_000) rttMs = rtt;
      break;
    }
    case 'error':
      lastError = msg.message !== '' ? `${msg.code}: ${msg.message}` : msg.code;
      break;
    case 'nodes':
      break;
  }
}

function onTick(t: TickMessage): void {
  if (t.room !== room) return;
  const now = performance.now();
  if (snapshots.push(t, now) !== 'accepted') return;
  tickMeter.add(now);
  owner = t.owner;
  playerCount = t.players.length;
  let online = 0;
  let mine: { x: number; y: number } | null = null;
  for (const p of t.players) {
    if (p.online) online++;
    if (p.id === session.player) {
      mine = { x: p.x, y: p.y };
      session.observeAck(p.ack);
      resendIfUnacknowledged(p.ack, now);
    }
  }
  onlineCount = online;
  if (mine !== null) me = mine;
}

// Input, ping, frame loop -----------------------------------------------------

attachKeyboard(window, keys);

setInterval(() => {
  if (transport.state === 'connected') transport.send({ type: 'ping', t: performance.now() });
}, PING_INTERVAL_MS);

const pool: RenderPlayer[] = [];
const model: StatusModel = {
  state: 'connecting',
  room,
  player: '',
  node: '',
  endpoint: '',
  owner: '',
  epoch: -1,
  lastSeq: -1,
  tps: 0,
  rttMs: null,
  attempt: 0,
  retryInMs: null,
  players: 0,
  online: 0,
  closeReason: '',
  stopReason: '',
  stopCode: 0,
  lastError: '',
};
let lastStatus = -Infinity;

function refreshStatus(now: number): void {
  const connected = transport.state === 'connected';
  model.state = transport.state;
  model.player = session.player;
  model.node = connected ? node : '';
  model.endpoint = transport.url;
  model.owner = owner;
  model.epoch = snapshots.epoch;
  model.lastSeq = snapshots.lastSeq;
  model.tps = tickMeter.rate(now);
  model.rttMs = connected ? rttMs : null;
  model.attempt = transport.attempt;
  model.retryInMs = transport.nextRetryAt === null ? null : Math.max(0, transport.nextRetryAt - now);
  model.players = playerCount;
  model.online = onlineCount;
  model.closeReason = transport.lastCloseReason;
  model.stopReason = transport.stopReason;
  model.stopCode = transport.stopCode;
  model.lastError = lastError;
  panel.update(model);
}

let frameMs = 0;
startLoop((now) => {
  const t0 = performance.now();
  const rt = snapshots.advance(now);
  const count = Number.isNaN(rt) ? 0 : snapshots.sample(rt, pool);
  const latest = snapshots.latest;
  renderer.draw(pool, count, session.player, latest?.tick.width ?? 0, latest?.tick.height ?? 0);
  frameMs += (performance.now() - t0 - frameMs) * 0.05;
  if (now - lastStatus >= STATUS_INTERVAL_MS) {
    lastStatus = now;
    refreshStatus(now);
  }
});
// The rAF loop pauses in background tabs; keep the panel (and banner) current anyway.
setInterval(() => {
  const now = performance.now();
  if (now - lastStatus >= 1000) {
    lastStatus = now;
    refreshStatus(now);
  }
}, 1000);

// Test hook -------------------------------------------------------------------

export interface TickmeshDebug {
  readonly player: string;
  readonly node: string;
  readonly epoch: number;
  readonly lastSeq: number;
  readonly me: { x: number; y: number } | null;
  readonly players: number;
  readonly playersTotal: number;
  readonly state: TransportState;
  readonly room: string;
  readonly owner: string;
  readonly endpoint: string;
  readonly rttMs: number | null;
  /** Average JS time of a frame (interpolate + draw), ms. */
  readonly frameMs: number;
  /** Arena size from the latest tick, null before the first. */
  readonly arena: { width: number; height: number } | null;
  /** Arena coordinates -> canvas backing-store pixels. */
  toCanvas(x: number, y: number): { x: number; y: number };
}

const debug: TickmeshDebug = Object.freeze({
  get player() {
    return session.player;
  },
  get node() {
    return transport.state === 'connected' ? node : '';
  },
  get epoch() {
    return snapshots.epoch;
  },
  get lastSeq() {
    return snapshots.lastSeq;
  },
  get me() {
    return me === null ? null : { x: me.x, y: me.y };
  },
  get players() {
    return onlineCount;
  },
  get playersTotal() {
    return playerCount;
  },
  get state() {
    return transport.state;
  },
  get room() {
    return room;
  },
  get owner() {
    return owner;
  },
  get endpoint() {
    return transport.url;
  },
  get rttMs() {
    return rttMs;
  },
  get frameMs() {
    return frameMs;
  },
  get arena() {
    const t = snapshots.latest?.tick;
    return t === undefined ? null : { width: t.width, height: t.height };
  },
  toCanvas(x: number, y: number) {
    return renderer.toCanvas(x, y);
  },
});

declare global {
  interface Window {
    readonly __tickmesh: TickmeshDebug;
  }
}
Object.defineProperty(window, '__tickmesh', { value: debug, writable: false, enumerable: false, configurable: false });

// Start -------------------------------------------------------------------------

if (!validRoom(room)) {
  transport.stop(`invalid room name ${JSON.stringify(room)} (use 1-32 characters a-z, 0-9 or -)`);
} else {
  transport.start();
}
window.addEventListener('pagehide', (ev) => {
  if (!ev.persisted) transport.stop('page closed');
});
refreshStatus(performance.now());
