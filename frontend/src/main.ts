// The game page: wires transport, session, snapshots, the room's game module
// (drawing, controls, prediction), renderer, net graph and status panel
// together, and exposes read-only state on window.__tickmesh for tests.
//
// Query parameters: ?room= (default lobby; the room's game comes from the
// server in welcome.game, and the page finds its module in the registry,
// games/registry.ts), ?name= (default player-xxxx), ?predict=0 (no client-side
// prediction: the own player is drawn from the interpolated ticks like
// everyone else; for debugging and the benchmark), ?netgraph=1 (show the net
// graph from the start; the N key toggles it), ?protocol=1 (JSON ticks instead
// of protocol 2's binary keyframes and deltas: readable in the browser's
// network panel, for debugging).

import './style.css';
import { arenaModule } from './games/arena';
import { collectModule } from './games/collect';
import { Registry, watchOnly, worldOf, type GameInstance, type GameModule, type Stage } from './games/registry';
import { startLoop } from './loop';
import { NetGraph, NetStats, utf8Length } from './netgraph';
import { createArenaPredictor } from './predict/arena';
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
const protocolWanted = params.get('protocol') === '1' ? 1 : 2;

const session = new Session(browserSessionStorage(), room);
const clock = new TickClock();
const snapshots = new SnapshotBuffer({ clock });
const tickMeter = new RateMeter();
const net = new NetStats();
const netgraph = new NetGraph(params.get('netgraph') === '1');
const canvas = el<HTMLCanvasElement>('game');
const renderer = new Renderer(canvas);
const stage: Stage = { renderer, hud: el('hud') };
const panel = new StatusPanel(el('status'), el('banner'));
const helpLine = el('help');

let node = '';
let owner = '';
let rttMs: number | null = null;
let lastError = '';
let me: { x: number; y: number } | null = null;
/** The own player in the newest tick: the roster's members and the game's fields (the arena's x, y, vx, vy, keys). */
interface MeState {
  x: number;
  y: number;
  ack: number;
  conn: number;
  online: boolean;
  [field: string]: number | boolean;
}
let meState: MeState | null = null;
let onlineCount = 0;
let playerCount = 0;
let welcomes = 0;
let welcomeProtocol = 0;
let binaryBytes = 0;
let binaryFrames = 0;

// The games this page plays. The arena's predictor (predict/arena.ts) starts, before the first acknowledged
// input, from the measured round trip in ticks; a lead sample more than MAX_LEAD_MARGIN_TICKS above the round
// trip is an ack held back after the input was applied (acks mean applied and stored), not the path's lead.
const MAX_LEAD_MARGIN_TICKS = 3;
const registry = new Registry([
  arenaModule({
    predictor: predicting
      ? (p, clk) =>
          createArenaPredictor(p, clk, {
            initialLead: () => (rttMs === null ? 1 : rttMs / clock.tickMs + 0.25),
            maxLead: () => (rttMs === null ? Infinity : rttMs / clock.tickMs + MAX_LEAD_MARGIN_TICKS),
          })
      : undefined,
  }),
  collectModule,
]);

// A welcome without a game comes from a node that ran only the arena (before games had a name on the wire).
const LEGACY_GAME = 'arena';

// The room's game: its module (from welcome.game) and the instance playing it.
let module: GameModule | null = null;
let gameName = '';
let game: GameInstance | null = null;
let detachInput: () => void = () => {};

function useGame(msg: WelcomeMessage): void {
  const tickRate = msg.params['tick_rate'];
  if (tickRate !== undefined && tickRate > 0) clock.setTickRate(tickRate, true);
  const gname = msg.game || LEGACY_GAME;
  const m = registry.get(gname);
  if (game !== null && m === module && gname === gameName) return; // a reconnect: same game
  detachInput();
  stage.hud.replaceChildren();
  module = m;
  gameName = gname;
  game = m.create(msg.params, clock);
  detachInput = game.attach({ window, canvas }, stage, (p) => sendInput(p));
  const title = m === watchOnly ? `${gname} (watching only)` : m.title;
  document.title = `Tickmesh — ${title}`;
  document.body.dataset['game'] = gname;
  helpLine.textContent = m.help;
}

const transport = new Transport({
  endpoints: new EndpointList(originWsUrl(location)),
  // The DOM WebSocket has these members with narrower event types (Event,
  // CloseEvent, MessageEvent); the transport reads only code/reason/data.
  createSocket: (url) => new WebSocket(url) as unknown as WebSocketLike,
  protocol: protocolWanted,
  hooks: {
    onOpen: () => {
      const seq = session.nextSeq();
      transport.send(helloMessage({ name, room, seq, resume: session.resume, protocol: transport.protocol }));
      game?.prediction?.hook.join(seq, performance.now());
    },
    onText: (text) => net.addBytes(utf8Length(text), performance.now()),
    onBinary: (n) => {
      binaryBytes += n;
      binaryFrames++;
      net.addBytes(n, performance.now());
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

// The latest input sent on this connection. docs/PROTOCOL.md: an input still unacknowledged after a second (e.g.
// dropped as rate_limited) is resent unchanged, and so is one whose ack went down (a new owner restored a state from
// before it).
let latest: { seq: number; payload: InputPayload; sentAt: number; acked: boolean } | null = null;
let inputsSent = 0;
const RESEND_AFTER_MS = 1000;

function sendInput(p: InputPayload): void {
  if (transport.state !== 'connected') return; // the module's current() goes out after the next welcome
  const seq = session.nextSeq();
  const now = performance.now();
  transport.send(inputMessage(seq, p));
  inputsSent++;
  latest = { seq, payload: p, sentAt: now, acked: false };
  const pr = game?.prediction;
  pr?.hook.input(seq, pr.input(p), now);
}

function resendIfUnacknowledged(ack: number, now: number): void {
  if (latest === null) return;
  if (ack >= latest.seq) {
    latest.acked = true;
    return;
  }
  if ((latest.acked || now - latest.sentAt >= RESEND_AFTER_MS) && transport.state === 'connected') {
    transport.send(inputMessage(latest.seq, latest.payload));
    latest.sentAt = now;
    latest.acked = false;
    const pr = game?.prediction;
    pr?.hook.input(latest.seq, pr.input(latest.payload), now);
  }
}

function onWelcome(msg: WelcomeMessage): void {
  welcomes++;
  net.reconnects = welcomes - 1;
  net.protocol = msg.protocol;
  welcomeProtocol = msg.protocol;
  if (session.player !== '' && msg.player !== session.player) game?.prediction?.hook.clear();
  session.welcome(msg.player, msg.resume, msg.ack);
  node = msg.node;
  useGame(msg);
  latest = null; // a new connection: its own input below replaces anything unacknowledged
  // Measure the round trip at once: until an input is acknowledged, it is a predictor's estimate of the lead.
  transport.send({ type: 'ping', t: performance.now() });
  // Once after every (re)connect: the server learns the controls held now.
  const p = game?.current() ?? null;
  if (p !== null) sendInput(p);
}

function handle(msg: ServerMessage): void {
  switch (msg.type) {
    case 'welcome':
      onWelcome(msg);
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
  game?.onTick(t, session.player);
  let online = 0;
  let mine: { x: number; y: number } | null = null;
  let error = 0;
  for (const p of t.players) {
    if (p.online) online++;
    if (p.id === session.player) {
      mine = { x: p.f['x'] ?? 0, y: p.f['y'] ?? 0 };
      meState = { ...p.f, x: p.f['x'] ?? 0, y: p.f['y'] ?? 0, ack: p.ack, conn: p.conn, online: p.online };
      session.observeAck(p.ack);
      const pr = game?.prediction;
      if (pr !== undefined) {
        pr.hook.reconcile(pr.serverState(t, p), t.seq, now);
        error = pr.hook.stats.lastError;
      }
      resendIfUnacknowledged(p.ack, now);
    }
  }
  onlineCount = online;
  if (mine !== null) me = mine;
  net.pushTick(clock.lastGapMs, error);
}

// Net graph, ping, frame loop ---------------------------------------------------

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
let frames = 0;
let drawnCount = 0;
// Others move at most their game's speed per axis in a frame (a tick's worth, or more in a longer frame), so that
// a late tick is caught up over a few frames; four ticks' worth or more is a teleport and is drawn at once.
const moveLimit: MoveLimit = { step: Infinity, snap: Infinity };
startLoop((now, dt) => {
  const t0 = performance.now();
  frames++;
  const rt = snapshots.advance(now);
  const speed = game?.moveSpeed() ?? Infinity;
  moveLimit.step = speed * Math.max(1, dt / clock.tickMs);
  moveLimit.snap = 4 * speed;
  const count = Number.isNaN(rt) ? 0 : snapshots.sample(rt, pool, dt > 0 ? moveLimit : undefined);
  drawnCount = count;
  const pr = game?.prediction;
  if (pr !== undefined && pr.hook.ready) {
    pr.hook.link(transport.state === 'connected', now);
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
  const latestTick = snapshots.latest?.tick ?? null;
  if (game !== null) {
    game.draw(stage, { players: pool, count, me: session.player, latest: latestTick, renderTick: rt });
  } else {
    renderer.draw(pool, 0, '', 0, 0);
  }
  if (netgraph.visible) {
    net.rttMs = transport.state === 'connected' ? rttMs : null;
    net.jitterMs = clock.jitterMs;
    net.delayTicks = clock.delayTicks;
    net.tickMs = clock.tickMs;
    net.leadTicks = pr?.hook.stats.leadTicks ?? 0;
    net.predicting = pr !== undefined;
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

const noPrediction = {
  leadTicks: 0,
  leadSamples: 0,
  pending: 0,
  overflow: 0,
  lastError: 0,
  maxError: 0,
  corrections: 0,
  snaps: 0,
  stalledFrames: 0,
  displayError: 0,
};

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
  /** Client-side prediction is on (not ?predict=0) and the room's game has a predictor. */
  readonly predicting: boolean;
  /** Where the own player was drawn in the last frame when predicted, else null (me is the server's position). */
  readonly predicted: { x: number; y: number } | null;
  /** The server's state of the own player in the latest tick: its game fields (the arena's x, y, vx, vy, keys), ack, conn, online. */
  readonly meState: MeState | null;
  /** The predictor's numbers (lead in ticks, pending inputs, errors, corrections, snaps, ...). */
  readonly prediction: typeof noPrediction;
  /** Render delay for others (ticks), the tick drawn in the last frame, tick arrival jitter (ms), tick rate in use. */
  readonly renderDelay: number;
  readonly renderTick: number;
  /** The tick clock's numbers: target delay (ticks), 95th percentile and last lateness (ms), re-anchorings, the lag (ms) and its shifts. */
  readonly clock: { targetDelay: number; lateP95Ms: number; lastLateMs: number; anchors: number; lagMs: number; shifts: number; tickAtNow: number };
  readonly jitterMs: number;
  readonly tickRate: number;
  /** Frames drawn so far, and the players drawn in the last one (world units). */
  readonly frames: number;
  drawn(): { id: string; x: number; y: number }[];
  /** Inputs sent (not counting resends) and the latest input's seq. */
  readonly inputsSent: number;
  readonly lastInputSeq: number;
  /** The net graph is shown. */
  readonly netgraph: boolean;
  /** The protocol of the connection (welcome.protocol; 0 before the first welcome), and the one asked for next. */
  readonly protocol: number;
  readonly protocolWanted: number;
  /** Binary frames (protocol 2 ticks) received, and their bytes. */
  readonly binary: { frames: number; bytes: number };
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
  get predicting() {
    return game?.prediction !== undefined;
  },
  get predicted() {
    const pr = game?.prediction;
    return pr !== undefined && pr.hook.ready ? { x: pr.hook.x, y: pr.hook.y } : null;
  },
  get meState() {
    return me === null || meState === null ? null : { ...meState };
  },
  get prediction() {
    const pr = game?.prediction;
    return pr === undefined ? { ...noPrediction } : { ...pr.hook.stats };
  },
  get renderDelay() {
    return clock.delayTicks;
  },
  get renderTick() {
    return snapshots.renderTick;
  },
  get clock() {
    return { targetDelay: clock.targetDelayTicks, lateP95Ms: clock.lateP95Ms, lastLateMs: clock.lastLateMs, anchors: clock.anchors, lagMs: clock.lagMs, shifts: clock.shifts, tickAtNow: clock.tickAt(performance.now()) };
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
  get protocol() {
    return welcomeProtocol;
  },
  get protocolWanted() {
    return transport.protocol;
  },
  get binary() {
    return { frames: binaryFrames, bytes: binaryBytes };
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
