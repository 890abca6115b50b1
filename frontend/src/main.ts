// The game page: wires transport, session, snapshots, prediction, input,
// renderer, net graph and status panel together, and exposes read-only state
// on window.__tickmesh for tests.
//
// Query parameters: ?room= (default lobby), ?name= (default player-xxxx),
// ?predict=0 (no client-side prediction: the own player is drawn from the
// interpolated ticks like everyone else; for debugging and the benchmark),
// ?netgraph=1 (show the net graph from the start; the N key toggles it).

import './style.css';
import { attachKeyboard, KeyState } from './input';
import { startLoop } from './loop';
import { NetGraph, NetStats, utf8Length } from './netgraph';
import { createArenaPredictor, fromTickPlayer, newArenaPlayer, speedFromTick, type ArenaParams } from './predict/arena';
import {
  DEFAULT_ROOM,
  DEFAULT_SPEED,
  helloMessage,
  keysToMask,
  sanitizeName,
  validRoom,
  type Keys,
  type ServerMessage,
  type TickMessage,
  type WelcomeMessage,
} from './protocol';
import { Renderer } from './render';
import { browserSessionStorage, Session } from './session';
import { SnapshotBuffer, type MoveLimit, type RenderPlayer } from './snapshots';
import { RateMeter, StatusPanel, type StatusModel } from './status';
import { TickClock } from './tickclock';
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

const predicting = params.get('predict') !== '0';

const session = new Session(browserSessionStorage(), room);
const clock = new TickClock();
const snapshots = new SnapshotBuffer({ clock });
const tickMeter = new RateMeter();
const net = new NetStats();
const netgraph = new NetGraph(params.get('netgraph') === '1');
const renderer = new Renderer(el<HTMLCanvasElement>('game'));
const panel = new StatusPanel(el('status'), el('banner'));

let node = '';
let owner = '';
let rttMs: number | null = null;
let lastError = '';
let me: { x: number; y: number } | null = null;
let onlineCount = 0;
let playerCount = 0;
let welcomes = 0;

// The arena's predictor hook (see predict/arena.ts). Arena size from the ticks; speed from welcome.params, else
// from what ticks show (a player holding a key moves at the speed), else pkg/game's default 10.
const arena: ArenaParams = { width: 1000, height: 1000, speed: DEFAULT_SPEED };
let speedAnnounced = false;
const predictor = createArenaPredictor(arena, clock, {
  // Before the first acknowledged input: the measured round trip, in ticks.
  initialLead: () => (rttMs === null ? 1 : rttMs / clock.tickMs + 0.25),
});
const serverMe = newArenaPlayer();

const transport = new Transport({
  endpoints: new EndpointList(originWsUrl(location)),
  // The DOM WebSocket has these members with narrower event types (Event,
  // CloseEvent, MessageEvent); the transport reads only code/reason/data.
  createSocket: (url) => new WebSocket(url) as unknown as WebSocketLike,
  hooks: {
    onOpen: () => {
      const seq = session.nextSeq();
      transport.send(helloMessage({ name, room, seq, resume: session.resume }));
      if (predicting) predictor.join(seq, performance.now());
    },
    onText: (text) => net.addBytes(utf8Length(text), performance.now()),
    onMessage: (msg) => handle(msg),
    onResetIdentity: () => {
      // 4501: the server does not know our resume token. Forget it and its
      // seq counter; the next hello joins as a new player (once: a second
      // 4501 in a row is terminal, see Transport).
      session.clear();
      me = null;
      predictor.clear();
    },
    onDecodeError: (err) => {
      lastError = `bad frame: ${err.message}`;
    },
  },
});

const keys = new KeyState((k) => sendKeys(k));

// The latest input sent on this connection. docs/PROTOCOL.md: an input still unacknowledged after a second (e.g.
// dropped as rate_limited) is resent unchanged, and so is one whose ack went down (a new owner restored a state from
// before it).
let latest: { seq: number; keys: Keys; sentAt: number; acked: boolean } | null = null;
let inputsSent = 0;
const RESEND_AFTER_MS = 1000;

function sendKeys(k: Keys): void {
  if (transport.state !== 'connected') return; // sent after the next welcome
  const seq = session.nextSeq();
  const now = performance.now();
  transport.send({ type: 'input', seq, keys: k });
  inputsSent++;
  latest = { seq, keys: k, sentAt: now, acked: false };
  if (predicting) predictor.input(seq, keysToMask(k), now);
}

function resendIfUnacknowledged(ack: number, now: number): void {
  if (latest === null) return;
  if (ack >= latest.seq) {
    latest.acked = true;
    return;
  }
  if ((latest.acked || now - latest.sentAt >= RESEND_AFTER_MS) && transport.state === 'connected') {
    transport.send({ type: 'input', seq: latest.seq, keys: latest.keys });
    latest.sentAt = now;
    latest.acked = false;
    if (predicting) predictor.input(latest.seq, keysToMask(latest.keys), now);
  }
}

function onWelcome(msg: WelcomeMessage): void {
  welcomes++;
  net.reconnects = welcomes - 1;
  net.protocol = msg.protocol;
  const p = msg.params;
  if (p !== null) {
    if (p.speed !== null) {
      arena.speed = p.speed;
      speedAnnounced = true;
    }
    if (p.tickRate !== null) clock.setTickRate(p.tickRate, true);
  }
}

function handle(msg: ServerMessage): void {
  switch (msg.type) {
    case 'welcome':
      if (session.player !== '' && msg.player !== session.player) predictor.clear();
      session.welcome(msg.player, msg.resume, msg.ack);
      node = msg.node;
      onWelcome(msg);
      latest = null; // a new connection: its own input below replaces anything unacknowledged
      // Measure the round trip at once: until an input is acknowledged, it is the predictor's estimate of the lead.
      transport.send({ type: 'ping', t: performance.now() });
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
  arena.width = t.width;
  arena.height = t.height;
  if (!speedAnnounced) {
    const sp = speedFromTick(t.players);
    if (sp > 0) arena.speed = sp;
  }
  let online = 0;
  let mine: { x: number; y: number } | null = null;
  let error = 0;
  for (const p of t.players) {
    if (p.online) online++;
    if (p.id === session.player) {
      mine = { x: p.x, y: p.y };
      fromTickPlayer(serverMe, p);
      session.observeAck(p.ack);
      if (predicting) {
        predictor.reconcile(serverMe, t.seq, now);
        error = predictor.stats.lastError;
      }
      resendIfUnacknowledged(p.ack, now);
    }
  }
  onlineCount = online;
  if (mine !== null) me = mine;
  net.pushTick(clock.lastGapMs, error);
}

// Input, ping, frame loop -----------------------------------------------------

attachKeyboard(window, keys);
window.addEventListener('keydown', (ev) => {
  if (ev.code !== 'KeyN' || ev.repeat || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target as HTMLElement | null;
  if (t !== null && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable === true)) return;
  netgraph.toggle();
});

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
let frames = 0;
let drawnCount = 0;
// Others move at most their speed per axis in a frame (a tick's worth, or more in a longer frame), so that a late
// tick is caught up over a few frames; four ticks' worth or more is a teleport and is drawn at once.
const moveLimit: MoveLimit = { step: Infinity, snap: Infinity };
startLoop((now, dt) => {
  const t0 = performance.now();
  frames++;
  const rt = snapshots.advance(now);
  moveLimit.step = arena.speed * Math.max(1, dt / clock.tickMs);
  moveLimit.snap = 4 * arena.speed;
  const count = Number.isNaN(rt) ? 0 : snapshots.sample(rt, pool, dt > 0 ? moveLimit : undefined);
  drawnCount = count;
  if (predicting && predictor.ready) {
    predictor.link(transport.state === 'connected', now);
    predictor.frame(now);
    for (let i = 0; i < count; i++) {
      const p = pool[i] as RenderPlayer;
      if (p.id === session.player) {
        p.x = predictor.x;
        p.y = predictor.y;
        break;
      }
    }
  }
  const newest = snapshots.latest;
  renderer.draw(pool, count, session.player, newest?.tick.width ?? 0, newest?.tick.height ?? 0);
  if (netgraph.visible) {
    net.rttMs = transport.state === 'connected' ? rttMs : null;
    net.jitterMs = clock.jitterMs;
    net.delayTicks = clock.delayTicks;
    net.tickMs = clock.tickMs;
    net.leadTicks = predictor.stats.leadTicks;
    net.predicting = predicting;
    netgraph.draw(renderer.context, renderer.cssHeight, renderer.view.dpr, net, now);
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
  /** Client-side prediction is on (not ?predict=0). */
  readonly predicting: boolean;
  /** Where the own player was drawn in the last frame when predicted, else null (me is the server's position). */
  readonly predicted: { x: number; y: number } | null;
  /** The server's state of the own player in the latest tick. */
  readonly meState: { x: number; y: number; vx: number; vy: number; keys: number; ack: number; conn: number; online: boolean } | null;
  /** The predictor's numbers (lead in ticks, pending inputs, errors, corrections, snaps, ...). */
  readonly prediction: { leadTicks: number; leadSamples: number; pending: number; overflow: number; lastError: number; maxError: number; corrections: number; snaps: number; stalledFrames: number; displayError: number };
  /** Render delay for others (ticks), the tick drawn in the last frame, tick arrival jitter (ms), tick rate in use. */
  readonly renderDelay: number;
  readonly renderTick: number;
  /** The tick clock's numbers: target delay (ticks), 95th percentile and last lateness (ms), re-anchorings. */
  readonly clock: { targetDelay: number; lateP95Ms: number; lastLateMs: number; anchors: number; tickAtNow: number };
  readonly jitterMs: number;
  readonly tickRate: number;
  /** Frames drawn so far, and the players drawn in the last one (arena units). */
  readonly frames: number;
  drawn(): { id: string; x: number; y: number }[];
  /** Inputs sent (not counting resends) and the latest input's seq. */
  readonly inputsSent: number;
  readonly lastInputSeq: number;
  /** The net graph is shown. */
  readonly netgraph: boolean;
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
  get predicting() {
    return predicting;
  },
  get predicted() {
    return predicting && predictor.ready ? { x: predictor.x, y: predictor.y } : null;
  },
  get meState() {
    return me === null ? null : { ...serverMe };
  },
  get prediction() {
    return { ...predictor.stats };
  },
  get renderDelay() {
    return clock.delayTicks;
  },
  get renderTick() {
    return snapshots.renderTick;
  },
  get clock() {
    return { targetDelay: clock.targetDelayTicks, lateP95Ms: clock.lateP95Ms, lastLateMs: clock.lastLateMs, anchors: clock.anchors, tickAtNow: clock.tickAt(performance.now()) };
  },
  get jitterMs() {
    return clock.jitterMs;
  },
  get tickRate() {
    return clock.tickRate;
  },
  get frames() {
    return frames;
  },
  drawn() {
    const out: { id: string; x: number; y: number }[] = [];
    for (let i = 0; i < drawnCount; i++) {
      const p = pool[i] as RenderPlayer;
      out.push({ id: p.id, x: p.x, y: p.y });
    }
    return out;
  },
  get inputsSent() {
    return inputsSent;
  },
  get lastInputSeq() {
    return latest?.seq ?? 0;
  },
  get netgraph() {
    return netgraph.visible;
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
