// The game page: wires transport, session, snapshots, the room's game module,
// renderer and status panel together, and exposes read-only state on
// window.__tickmesh for tests.
//
// ?room= picks the room (default lobby), ?name= the display name. The room's
// game comes from the server (welcome.game); the page finds its module in the
// registry (games/registry.ts) and shows its name.

import './style.css';
import { arenaModule } from './games/arena';
import { collectModule } from './games/collect';
import { Registry, watchOnly, worldOf, type GameInstance, type GameModule, type Stage } from './games/registry';
import { startLoop } from './loop';
import {
  DEFAULT_ROOM,
  helloMessage,
  inputMessage,
  sanitizeName,
  validRoom,
  type InputPayload,
  type ServerMessage,
  type TickMessage,
  type WelcomeMessage,
} from './protocol';
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

const registry = new Registry([arenaModule(), collectModule]);
const session = new Session(browserSessionStorage(), room);
const snapshots = new SnapshotBuffer();
const tickMeter = new RateMeter();
const canvas = el<HTMLCanvasElement>('game');
const renderer = new Renderer(canvas);
const stage: Stage = { renderer, hud: el('hud') };
const panel = new StatusPanel(el('status'), el('banner'));
const helpLine = el('help');

// Local time -> server ticks, for a module's predictor: the newest tick, carried on at the estimated rate.
const clock = {
  tickAt(now: number): number {
    const n = snapshots.latest;
    return n === null ? Number.NaN : n.seq + ((now - n.arrival) * snapshots.rate()) / 1000;
  },
  get tickMs(): number {
    return 1000 / snapshots.rate();
  },
};

let node = '';
let owner = '';
let rttMs: number | null = null;
let lastError = '';
let me: { x: number; y: number } | null = null;
let onlineCount = 0;
let playerCount = 0;

// The room's game: its module (from welcome.game) and the instance playing it.
let module: GameModule | null = null;
let gameName = '';
let game: GameInstance | null = null;
let detachInput: () => void = () => {};

// A welcome without a game comes from a node that ran only the arena (before games had a name on the wire).
const LEGACY_GAME = 'arena';

function useGame(msg: WelcomeMessage): void {
  const name = msg.game || LEGACY_GAME;
  const m = registry.get(name);
  if (game !== null && m === module && name === gameName) return; // a reconnect: same game
  detachInput();
  stage.hud.replaceChildren();
  module = m;
  gameName = name;
  game = m.create(msg.params, clock);
  detachInput = game.attach({ window, canvas }, stage, (p) => sendInput(p));
  const title = m === watchOnly ? `${name} (watching only)` : m.title;
  document.title = `Tickmesh — ${title}`;
  document.body.dataset['game'] = name;
  helpLine.textContent = m.help;
}

const transport = new Transport({
  endpoints: new EndpointList(originWsUrl(location)),
  // The DOM WebSocket has these members with narrower event types (Event,
  // CloseEvent, MessageEvent); the transport reads only code/reason/data.
  createSocket: (url) => new WebSocket(url) as unknown as WebSocketLike,
  hooks: {
    onOpen: () => {
      const seq = session.nextSeq();
      transport.send(helloMessage({ name, room, seq, resume: session.resume }));
      game?.prediction?.hook.join(seq, performance.now());
    },
    onMessage: (msg) => handle(msg),
    onResetIdentity: () => {
      // 4501: the server does not know our resume token. Forget it and its
      // seq counter; the next hello joins as a new player (once: a second
      // 4501 in a row is terminal, see Transport).
      session.clear();
      me = null;
      game?.prediction?.hook.clear();
    },
    onDecodeError: (err) => {
      lastError = `bad frame: ${err.message}`;
    },
  },
});

// The latest input sent on this connection, until a tick shows it applied (docs/PROTOCOL.md: an input still
// unacknowledged after a second, e.g. dropped as rate_limited, is resent unchanged).
let pending: { seq: number; payload: InputPayload; sentAt: number } | null = null;
const RESEND_AFTER_MS = 1000;

function sendInput(p: InputPayload): void {
  if (transport.state !== 'connected') return; // the module's current() goes out after the next welcome
  const seq = session.nextSeq();
  const now = performance.now();
  transport.send(inputMessage(seq, p));
  pending = { seq, payload: p, sentAt: now };
  const pr = game?.prediction;
  pr?.hook.input(seq, pr.input(p), now);
}

function resendIfUnacknowledged(ack: number, now: number): void {
  if (pending === null) return;
  if (ack >= pending.seq) {
    pending = null;
  } else if (now - pending.sentAt >= RESEND_AFTER_MS && transport.state === 'connected') {
    transport.send(inputMessage(pending.seq, pending.payload));
    pending.sentAt = now;
  }
}

function handle(msg: ServerMessage): void {
  switch (msg.type) {
    case 'welcome': {
      if (session.player !== '' && msg.player !== session.player) game?.prediction?.hook.clear();
      session.welcome(msg.player, msg.resume, msg.ack);
      node = msg.node;
      useGame(msg);
      pending = null; // a new connection: its own input below replaces anything unacknowledged
      // Once after every (re)connect: the server learns the controls held now.
      const p = game?.current() ?? null;
      if (p !== null) sendInput(p);
      break;
    }
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
  game?.onTick(t, session.player);
  let online = 0;
  let mine: { x: number; y: number } | null = null;
  for (const p of t.players) {
    if (p.online) online++;
    if (p.id === session.player) {
      mine = { x: p.f['x'] ?? 0, y: p.f['y'] ?? 0 };
      session.observeAck(p.ack);
      const pr = game?.prediction;
      pr?.hook.reconcile(pr.serverState(t, p), t.seq, now);
      resendIfUnacknowledged(p.ack, now);
    }
  }
  onlineCount = online;
  if (mine !== null) me = mine;
}

// Ping, frame loop ------------------------------------------------------------

setInterval(() => {
  if (transport.state === 'connected') transport.send({ type: 'ping', t: performance.now() });
}, PING_INTERVAL_MS);

const pool: RenderPlayer[] = [];
const model: StatusModel = {
  state: 'connecting',
  room,
  game: '',
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
  model.game = module === null ? '' : module === watchOnly ? `${gameName} (watching)` : module.title;
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
  const latest = snapshots.latest?.tick ?? null;
  const pr = game?.prediction;
  if (pr !== undefined && pr.hook.ready) {
    pr.hook.frame(now);
    for (let i = 0; i < count; i++) {
      const p = pool[i] as RenderPlayer;
      if (p.id === session.player) {
        p.x = pr.hook.x;
        p.y = pr.hook.y;
        break;
      }
    }
  }
  if (game !== null) {
    game.draw(stage, { players: pool, count, me: session.player, latest, renderTick: rt });
  } else {
    renderer.draw(pool, 0, '', 0, 0);
  }
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
  /** The own player's x and y fields in the newest tick (both games have them), null before it appears. */
  readonly me: { x: number; y: number } | null;
  readonly players: number;
  readonly playersTotal: number;
  readonly state: TransportState;
  readonly room: string;
  /** The room's game (welcome.game), '' before the welcome. */
  readonly game: string;
  /** The games this page has modules for. */
  readonly games: string[];
  /** What the game module reports (scores, pickups, ...). */
  gameState(): Record<string, unknown>;
  readonly owner: string;
  readonly endpoint: string;
  readonly rttMs: number | null;
  /** Average JS time of a frame (interpolate + draw), ms. */
  readonly frameMs: number;
  /** World size from the latest tick's width and height, null before the first. */
  readonly arena: { width: number; height: number } | null;
  /** World coordinates -> canvas backing-store pixels. */
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
  get game() {
    return gameName;
  },
  get games() {
    return registry.names;
  },
  gameState() {
    return game?.debug() ?? {};
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
    return worldOf(snapshots.latest?.tick ?? null);
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
