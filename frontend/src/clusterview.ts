// The cluster view's pure logic: decoding the event stream of GET /api/cluster/events
// (see docs/ARCHITECTURE.md, "The cluster view's event stream"), the timeline
// (merging what several nodes observed, bounded), the words for each event,
// and the layout of the picture. No DOM here: cluster.ts draws.

export type NodeState = 'ready' | 'not_ready' | 'draining' | 'cut_off' | 'down' | 'left';
const NODE_STATES: readonly NodeState[] = ['ready', 'not_ready', 'draining', 'cut_off', 'down', 'left'];

export interface ViewNode {
  name: string;
  url: string;
  /** Base URL of its admin listener: where the page can move. */
  admin: string;
  state: NodeState;
  ready: boolean;
  routed: boolean;
  sockets: number;
  /** When it entered its state, Unix ms (observer's clock). */
  since: number;
  detail: string;
}

export interface ViewRoom {
  room: string;
  owner: string;
  epoch: number;
  /** From the last tick the observer relayed; null when it relays none. */
  players: number | null;
  online: number | null;
}

export interface ViewState {
  /** The node this picture comes from. */
  node: string;
  boot: string;
  nodes: ViewNode[];
  rooms: ViewRoom[];
  roomsTotal: number;
  /** 'meta' and stream names → leader ('' = none). */
  leaders: Record<string, string>;
}

export type EventKind = 'lease' | 'resumed' | 'node' | 'leader';

export interface ViewEvent {
  id: string;
  seq: number;
  at: number;
  observer: string;
  kind: EventKind;
  room: string;
  how: string;
  node: string;
  from: string;
  to: string;
  stream: string;
  epoch: number;
  fromEpoch: number;
  /** resumed: the pause between the last tick of fromEpoch and the first of epoch at the observer's relay. */
  gapMs: number | null;
  detail: string;
}

type Obj = Record<string, unknown>;

function obj(x: unknown, what: string): Obj {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new Error(`${what}: expected an object`);
  return x as Obj;
}
const str = (o: Obj, k: string): string => (typeof o[k] === 'string' ? (o[k] as string) : '');
const num = (o: Obj, k: string): number => (typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : 0);
const optNum = (o: Obj, k: string): number | null =>
  typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : null;

/** Validates a `state` message's data; throws on a malformed one. */
export function decodeState(v: unknown): ViewState {
  const o = obj(v, 'state');
  if (typeof o['node'] !== 'string') throw new Error('state.node: expected a string');
  const list = (k: string): unknown[] => {
    const a = o[k] ?? [];
    if (!Array.isArray(a)) throw new Error(`state.${k}: expected an array`);
    return a;
  };
  const leaders: Record<string, string> = {};
  if (o['leaders'] !== undefined && o['leaders'] !== null) {
    for (const [k, val] of Object.entries(obj(o['leaders'], 'state.leaders'))) {
      if (typeof val === 'string') leaders[k] = val;
    }
  }
  return {
    node: o['node'],
    boot: str(o, 'boot'),
    nodes: list('nodes').map((x, i) => {
      const n = obj(x, `nodes[${i}]`);
      if (typeof n['name'] !== 'string' || n['name'] === '') throw new Error(`nodes[${i}].name: expected a name`);
      const st = str(n, 'state') as NodeState;
      return {
        name: n['name'],
        url: str(n, 'url'),
        admin: str(n, 'admin'),
        state: NODE_STATES.includes(st) ? st : 'not_ready',
        ready: n['ready'] === true,
        routed: n['routed'] === true,
        sockets: num(n, 'sockets'),
        since: num(n, 'since'),
        detail: str(n, 'detail'),
      };
    }),
    rooms: list('rooms').map((x, i) => {
      const r = obj(x, `rooms[${i}]`);
      if (typeof r['room'] !== 'string') throw new Error(`rooms[${i}].room: expected a string`);
      return { room: r['room'], owner: str(r, 'owner'), epoch: num(r, 'epoch'), players: optNum(r, 'players'), online: optNum(r, 'online') };
    }),
    roomsTotal: num(o, 'rooms_total'),
    leaders,
  };
}

const KINDS: readonly EventKind[] = ['lease', 'resumed', 'node', 'leader'];

/** Validates a `timeline` message's data; throws on a malformed one or an unknown kind. */
export function decodeEvent(v: unknown): ViewEvent {
  const o = obj(v, 'event');
  const kind = str(o, 'kind') as EventKind;
  if (!KINDS.includes(kind)) throw new Error(`event.kind: unknown ${JSON.stringify(o['kind'])}`);
  if (typeof o['id'] !== 'string' || o['id'] === '') throw new Error('event.id: expected a string');
  return {
    id: o['id'],
    seq: num(o, 'seq'),
    at: num(o, 'at'),
    observer: str(o, 'observer'),
    kind,
    room: str(o, 'room'),
    how: str(o, 'how'),
    node: str(o, 'node'),
    from: str(o, 'from'),
    to: str(o, 'to'),
    stream: str(o, 'stream'),
    epoch: num(o, 'epoch'),
    fromEpoch: num(o, 'from_epoch'),
    gapMs: optNum(o, 'gap_ms'),
    detail: str(o, 'detail'),
  };
}

/** The heartbeat's data: the observer's clock and its last event's seq. */
export function decodeHeartbeat(v: unknown): { at: number; seq: number } {
  const o = obj(v, 'heartbeat');
  return { at: num(o, 'at'), seq: num(o, 'seq') };
}

// ---------------------------------------------------------------------------
// Timeline

const idKey = (e: ViewEvent): string => `${e.observer}:${e.id}`;

/** What an event states about the cluster: the same for every node that saw a lease change or a gap. */
function factKey(e: ViewEvent): string {
  switch (e.kind) {
    case 'lease':
      return `lease:${e.room}:${e.epoch}:${e.how}`;
    case 'resumed':
      return `resumed:${e.room}:${e.epoch}`;
    default:
      return `seen:${idKey(e)}`;
  }
}

/** A lease changed hands (as opposed to going away). */
const ACQUIRED = new Set(['taken', 'handoff', 'stolen', 'reclaimed']);

export interface TimelineEntry {
  event: ViewEvent;
  /** The pause players saw, for an acquisition whose new owner's first tick was seen (or a lone resumed event). */
  gapMs: number | null;
}

/**
 * The timeline: events from the node the page reads now and from those it
 * read before, merged. A lease change (or a tick gap) is the same fact
 * whichever node saw it, so it is kept once (by room and epoch); node and
 * leader events are one node's observations, so after a move to another
 * node its replayed ones from before the move are left out (the node read
 * before covered that time). At most `max` entries, the oldest dropped.
 */
export class Timeline {
  private events: ViewEvent[] = []; // oldest first
  private ids = new Set<string>(); // observer:id of the events kept
  private facts = new Set<string>(); // factKey of the events kept
  private gaps = new Map<string, number>(); // room:epoch → the first gap seen
  private latest = 0; // the latest `at` seen from any node
  private covered = 0; // node and leader events at or before this come from before the last move

  constructor(private readonly max = 200) {}

  /** Records an observer's clock (heartbeats, events): the time the page has seen up to. */
  saw(at: number): void {
    if (at > this.latest) this.latest = at;
  }

  /** Marks a new connection: node and leader events it replays from before now are skipped. */
  connected(): void {
    this.covered = this.latest;
  }

  /** Adds an event; false when it is already there or from before the last move. */
  add(e: ViewEvent): boolean {
    const id = idKey(e);
    if (this.ids.has(id)) return false;
    this.saw(e.at);
    if (e.kind === 'resumed' && e.gapMs !== null) {
      const re = `${e.room}:${e.epoch}`;
      if (!this.gaps.has(re)) this.gaps.set(re, e.gapMs);
      while (this.gaps.size > this.max) this.gaps.delete(this.gaps.keys().next().value as string);
    }
    if ((e.kind === 'node' || e.kind === 'leader') && e.at <= this.covered) return false;
    const fact = factKey(e);
    if (this.facts.has(fact)) return false;
    this.ids.add(id);
    this.facts.add(fact);
    let i = this.events.length;
    while (i > 0 && (this.events[i - 1] as ViewEvent).at > e.at) i--;
    this.events.splice(i, 0, e);
    while (this.events.length > this.max) {
      const old = this.events.shift() as ViewEvent;
      this.ids.delete(idKey(old));
      this.facts.delete(factKey(old));
    }
    return true;
  }

  /**
   * The entries to show, newest first: a resumed event is shown as the gap
   * of its room's acquisition at that epoch, and on its own only when the
   * acquisition is not in the timeline.
   */
  entries(): TimelineEntry[] {
    const acquired = new Set<string>();
    for (const e of this.events) if (e.kind === 'lease' && ACQUIRED.has(e.how)) acquired.add(`${e.room}:${e.epoch}`);
    const out: TimelineEntry[] = [];
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i] as ViewEvent;
      const re = `${e.room}:${e.epoch}`;
      if (e.kind === 'resumed') {
        if (!acquired.has(re)) out.push({ event: e, gapMs: e.gapMs });
        continue;
      }
      out.push({ event: e, gapMs: e.kind === 'lease' && ACQUIRED.has(e.how) ? (this.gaps.get(re) ?? null) : null });
    }
    return out;
  }

  get size(): number {
    return this.events.length;
  }
}

// ---------------------------------------------------------------------------
// Words

const STREAM_NAMES: Record<string, string> = {
  meta: 'JetStream meta',
  KV_owners: 'owners (KV_owners)',
  KV_snapshots: 'snapshots (KV_snapshots)',
  KV_nodes: 'nodes (KV_nodes)',
  INPUTS: 'INPUTS',
};

/** A stream's short badge label. */
export function streamBadge(stream: string): string {
  switch (stream) {
    case 'meta':
      return 'meta';
    case 'KV_owners':
      return 'owners';
    case 'KV_snapshots':
      return 'snapshots';
    case 'KV_nodes':
      return 'nodes';
    case 'INPUTS':
      return 'inputs';
  }
  return stream;
}

export const STATE_LABELS: Record<NodeState, string> = {
  ready: 'ready',
  not_ready: 'not ready',
  draining: 'draining',
  cut_off: 'cut off',
  down: 'down',
  left: 'left',
};

/** A pause, exact to the tenth of a millisecond below 10 s. */
export function formatGap(ms: number): string {
  if (ms < 10_000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** One timeline entry in words. */
export function describe(t: TimelineEntry): string {
  const e = t.event;
  const gap = t.gapMs === null ? '' : ` · ticks paused ${formatGap(t.gapMs)}`;
  switch (e.kind) {
    case 'lease':
      switch (e.how) {
        case 'taken':
          return `${e.room}: taken by ${e.node} (epoch ${e.epoch})${gap}`;
        case 'handoff':
          return `${e.room}: handed off ${e.from} → ${e.node} (epoch ${e.fromEpoch} → ${e.epoch})${gap}`;
        case 'stolen':
          return `${e.room}: taken over by ${e.node} from ${e.from || 'a corrupt lease'} (epoch ${e.fromEpoch} → ${e.epoch})${gap}`;
        case 'reclaimed':
          return `${e.room}: reclaimed by ${e.node} (epoch ${e.fromEpoch} → ${e.epoch})${gap}`;
        case 'released':
          return `${e.room}: released by ${e.node} (epoch ${e.epoch})`;
        case 'expired':
          return `${e.room}: lease of ${e.node} expired (epoch ${e.epoch})`;
        case 'corrupt':
          return `${e.room}: the lease value is corrupt`;
      }
      return `${e.room}: lease ${e.how}`;
    case 'resumed':
      return `${e.room}: ticks resumed at epoch ${e.epoch}${e.node ? ` (${e.node})` : ''} after ${formatGap(e.gapMs ?? 0)}`;
    case 'node': {
      const to = e.to as NodeState;
      const from = e.from as NodeState | '';
      let words: string;
      if ((to === 'ready' || to === 'not_ready') && (from === '' || from === 'down' || from === 'left')) {
        words = `joined${to === 'not_ready' ? ' (not ready)' : ''}`;
      } else if (to === 'ready' && from === 'cut_off') {
        words = 'reachable again';
      } else {
        words = STATE_LABELS[to] ?? to;
      }
      return `${e.node} ${words}${e.detail ? ` (${e.detail})` : ''}`;
    }
    case 'leader': {
      const name = STREAM_NAMES[e.stream] ?? e.stream;
      if (e.to === '') return `${name} lost its leader${e.from ? ` (was ${e.from})` : ''}`;
      if (e.from === '') return `${name} leader: ${e.to}`;
      return `${name} leader moved ${e.from} → ${e.to}`;
    }
  }
}

// ---------------------------------------------------------------------------
// Layout

export interface RoomChip {
  room: string;
  owner: string;
  epoch: number;
  players: number | null;
  online: number | null;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface NodeBox {
  name: string;
  state: NodeState;
  /** This is the node the picture comes from. */
  answering: boolean;
  sockets: number;
  /** Badges of the streams it leads ('meta', 'owners', ...), in a fixed order. */
  leads: string[];
  rooms: RoomChip[];
  /** Rooms it owns beyond those drawn. */
  more: number;
  detail: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Layout {
  width: number;
  height: number;
  boxes: NodeBox[];
  /** Rooms whose owner is no node of the picture (or none), drawn in a box of their own when any. */
  elsewhere: NodeBox | null;
}

export interface LayoutOptions {
  width: number;
  boxWidth: number;
  gap: number;
  header: number;
  chipHeight: number;
  maxChips: number;
}

export const DEFAULT_LAYOUT: LayoutOptions = { width: 960, boxWidth: 220, gap: 16, header: 70, chipHeight: 22, maxChips: 8 };

const BADGE_ORDER = ['meta', 'KV_owners', 'KV_snapshots', 'INPUTS', 'KV_nodes'];

/**
 * Places the nodes as boxes in rows (sorted by name), each with the rooms it
 * owns as chips (the lobby first) and badges of the streams it leads; a box
 * is as tall as its chips, a row as tall as its tallest box.
 */
export function layout(st: ViewState, opts: LayoutOptions = DEFAULT_LAYOUT): Layout {
  const names = new Set(st.nodes.map((n) => n.name));
  const owned = new Map<string, ViewRoom[]>();
  const elsewhere: ViewRoom[] = [];
  for (const r of st.rooms) {
    if (r.owner !== '' && names.has(r.owner)) {
      const list = owned.get(r.owner) ?? [];
      list.push(r);
      owned.set(r.owner, list);
    } else {
      elsewhere.push(r);
    }
  }
  const byRoom = (a: ViewRoom, b: ViewRoom) => (a.room === 'lobby' ? -1 : b.room === 'lobby' ? 1 : a.room.localeCompare(b.room));
  const leads = (name: string) =>
    BADGE_ORDER.filter((s) => st.leaders[s] === name)
      .concat(Object.keys(st.leaders).filter((s) => !BADGE_ORDER.includes(s) && st.leaders[s] === name).sort())
      .map(streamBadge);
  const box = (name: string, state: NodeState, sockets: number, detail: string, rooms: ViewRoom[]): NodeBox => {
    const shown = [...rooms].sort(byRoom).slice(0, opts.maxChips);
    const more = rooms.length - shown.length;
    const h = opts.header + shown.length * (opts.chipHeight + 4) + (more > 0 ? 18 : 0) + 8;
    return {
      name,
      state,
      answering: name === st.node,
      sockets,
      leads: leads(name),
      rooms: shown.map((r, i) => ({ ...r, x: 8, y: opts.header + i * (opts.chipHeight + 4), w: opts.boxWidth - 16, h: opts.chipHeight })),
      more,
      detail,
      x: 0,
      y: 0,
      w: opts.boxWidth,
      h,
    };
  };
  const boxes = [...st.nodes]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((n) => box(n.name, n.state, n.sockets, n.detail, owned.get(n.name) ?? []));
  const other = elsewhere.length > 0 ? box('', 'left', 0, 'owners not in the picture', elsewhere) : null;
  const all = other === null ? boxes : [...boxes, other];
  const cols = Math.max(1, Math.floor((opts.width - opts.gap) / (opts.boxWidth + opts.gap)));
  let y = opts.gap;
  for (let i = 0; i < all.length; i += cols) {
    const row = all.slice(i, i + cols);
    const h = Math.max(...row.map((b) => b.h));
    row.forEach((b, j) => {
      b.x = opts.gap + j * (opts.boxWidth + opts.gap);
      b.y = y;
    });
    y += h + opts.gap;
  }
  const used = Math.min(all.length, cols);
  return { width: Math.max(opts.width, opts.gap + used * (opts.boxWidth + opts.gap)), height: y, boxes, elsewhere: other };
}

/** A room chip's words: "lobby · epoch 5 · 3 players" (players unknown: not relayed by the answering node). */
export function chipLabel(c: { room: string; epoch: number; players: number | null; online: number | null; owner?: string }): string {
  const who = c.owner !== undefined && c.owner !== '' ? ` · ${c.owner}` : '';
  const players =
    c.players === null ? '' : ` · ${c.players} player${c.players === 1 ? '' : 's'}${c.online !== null && c.online !== c.players ? ` (${c.online} online)` : ''}`;
  return `${c.room} · e${c.epoch}${players}${who}`;
}
