// The cluster view (cluster.html), served by a node's admin listener
// (-admin-http): a live picture of the cluster (nodes as boxes with their
// state, sockets, the rooms each owns and the streams each leads) and a
// timeline of cluster events, pushed by the node as Server-Sent Events
// (GET /api/cluster/events). When the node it reads from stops answering (the
// stream fails, says bye, or is silent for 6 s) the page moves to the next
// node's admin listener it has learned of (`admin` of each node).
//
// The pure parts (decoding, timeline, words, layout) are in clusterview.ts.

import './style.css';
import {
  chipLabel,
  decodeEvent,
  decodeHeartbeat,
  decodeState,
  describe,
  layout,
  STATE_LABELS,
  Timeline,
  type Layout,
  type NodeBox,
  type ViewState,
} from './clusterview';

export interface ClusterNode {
  name: string;
  /** The node's public HTTP base URL (where browsers play), e.g. http://127.0.0.1:8081 */
  url: string;
  /** The base URL of the node's admin listener (its /api/cluster), e.g. http://127.0.0.1:9091 */
  admin: string;
  ready: boolean;
  sockets: number;
}

export interface ClusterRoom {
  room: string;
  owner: string;
  epoch: number;
}

export interface ClusterInfo {
  node: string;
  nodes: ClusterNode[];
  rooms: ClusterRoom[];
}

/** Validates an /api/cluster response; throws on a malformed one. */
export function decodeCluster(v: unknown): ClusterInfo {
  const obj = (x: unknown, what: string): Record<string, unknown> => {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new Error(`${what}: expected an object`);
    return x as Record<string, unknown>;
  };
  const o = obj(v, 'cluster');
  const list = (k: string) => {
    const a = o[k] ?? [];
    if (!Array.isArray(a)) throw new Error(`cluster.${k}: expected an array`);
    return a as unknown[];
  };
  return {
    node: typeof o['node'] === 'string' ? o['node'] : '',
    nodes: list('nodes').map((x, i) => {
      const n = obj(x, `nodes[${i}]`);
      if (typeof n['name'] !== 'string') throw new Error(`nodes[${i}].name: expected a string`);
      return {
        name: n['name'],
        url: typeof n['url'] === 'string' ? n['url'] : '',
        admin: typeof n['admin'] === 'string' ? n['admin'] : '',
        ready: n['ready'] === true,
        sockets: typeof n['sockets'] === 'number' ? n['sockets'] : 0,
      };
    }),
    rooms: list('rooms').map((x, i) => {
      const r = obj(x, `rooms[${i}]`);
      if (typeof r['room'] !== 'string') throw new Error(`rooms[${i}].room: expected a string`);
      return {
        room: r['room'],
        owner: typeof r['owner'] === 'string' ? r['owner'] : '',
        epoch: typeof r['epoch'] === 'number' ? r['epoch'] : 0,
      };
    }),
  };
}

/**
 * The /api/cluster URLs to poll: the page's own origin first ('' = same
 * origin, a relative URL), then every known node's admin base URL,
 * deduplicated.
 * Keeps a cursor that moves to the next source on failure.
 */
export class ClusterSources {
  private list: string[];
  private i = 0;

  /**
   * @param origin the page's own source ('' = same origin)
   * @param self the page's origin as a URL (e.g. http://127.0.0.1:9091), left
   *   out of the learned list since origin already stands for it
   */
  constructor(
    private readonly origin: string,
    private readonly self = '',
  ) {
    this.list = [origin];
  }

  learn(nodes: readonly ClusterNode[]): void {
    const cur = this.list[this.i];
    const next = [this.origin];
    for (const n of nodes) {
      let base: string;
      try {
        const u = new URL(n.admin);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') continue;
        base = u.origin;
      } catch {
        continue;
      }
      if (base !== this.self && !next.includes(base)) next.push(base);
    }
    this.list = next;
    const j = cur === undefined ? -1 : next.indexOf(cur);
    this.i = j >= 0 ? j : 0;
  }

  current(): string {
    return this.list[this.i] ?? this.origin;
  }

  advance(): string {
    this.i = (this.i + 1) % this.list.length;
    return this.current();
  }

  all(): readonly string[] {
    return this.list;
  }
}

export function clusterUrl(base: string): string {
  return `${base.replace(/\/+$/, '')}/api/cluster`;
}

/** The event stream's URL at base, resuming after the event id since when given. */
/** How long the page waits for a failed stream's node to answer why before it moves on. */
const PROBE_MS = 2000;

/**
 * whyFailed asks a node once for its event stream and names the outcome: `HTTP <status>` when the node answers
 * with an error, `unreachable` when nothing answers within PROBE_MS, and `closed` when it answers 200 (the stream
 * itself ended). The body is never read.
 */
export async function whyFailed(url: string, fetcher: typeof fetch = fetch): Promise<string> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), PROBE_MS);
  try {
    const r = await fetcher(url, { signal: ac.signal, headers: { Accept: 'text/event-stream' }, cache: 'no-store' });
    return r.ok ? 'closed' : `HTTP ${r.status}`;
  } catch {
    return 'unreachable';
  } finally {
    clearTimeout(timer);
    ac.abort(); // a 200 answer is a live stream: stop it
  }
}

export function eventsUrl(base: string, since = ''): string {
  const url = `${clusterUrl(base)}/events`;
  return since === '' ? url : `${url}?since=${encodeURIComponent(since)}`;
}

// ---------------------------------------------------------------------------
// Page

const SVG = 'http://www.w3.org/2000/svg';
/** A stream silent this long (heartbeats come every 2 s) is dead: move on. */
const SILENCE_MS = 6000;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, parent?: Element): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent?.appendChild(e);
  return e;
}

function text(parent: Element, x: number, y: number, s: string, cls: string, testid?: string): SVGTextElement {
  const t = svg('text', { x, y, class: cls }, parent);
  t.textContent = s;
  if (testid !== undefined) t.dataset['testid'] = testid;
  return t;
}

function drawBox(root: SVGSVGElement, b: NodeBox, elsewhere: boolean): void {
  const g = svg('g', { transform: `translate(${b.x},${b.y})`, class: `node state-${b.state}${b.answering ? ' answering' : ''}` }, root);
  g.dataset['testid'] = elsewhere ? 'node-elsewhere' : `node-${b.name}`;
  g.dataset['state'] = b.state;
  const rect = svg('rect', { width: b.w, height: b.h, rx: 8, class: 'box' }, g);
  if (b.detail !== '') svg('title', {}, rect).textContent = b.detail;
  if (elsewhere) {
    text(g, 10, 22, 'owned elsewhere', 'name');
  } else {
    text(g, 10, 22, b.name + (b.answering ? ' ◉' : ''), 'name', 'node-name');
    const st = text(g, b.w - 10, 22, STATE_LABELS[b.state], 'state', 'node-ready');
    st.setAttribute('text-anchor', 'end');
    text(g, 10, 42, `${b.sockets} socket${b.sockets === 1 ? '' : 's'}`, 'sockets', 'node-sockets');
    let x = 10;
    for (const l of b.leads) {
      const w = 8 + l.length * 6.5;
      const badge = svg('g', { transform: `translate(${x},50)`, class: 'badge' }, g);
      badge.dataset['testid'] = `leads-${l}`;
      svg('rect', { width: w, height: 14, rx: 7 }, badge);
      text(badge, w / 2, 11, l, 'badge-text').setAttribute('text-anchor', 'middle');
      x += w + 4;
    }
  }
  for (const c of b.rooms) {
    const chip = svg('g', { transform: `translate(${c.x},${c.y})`, class: 'room' }, g);
    chip.dataset['testid'] = `room-${c.room}`;
    chip.dataset['owner'] = c.owner;
    chip.dataset['epoch'] = String(c.epoch);
    svg('rect', { width: c.w, height: c.h, rx: 4 }, chip);
    text(chip, 6, 15, chipLabel(elsewhere ? c : { ...c, owner: '' }), 'room-text');
  }
  if (b.more > 0) text(g, 10, b.h - 10, `+ ${b.more} more`, 'more');
}

function drawPicture(root: SVGSVGElement, l: Layout): void {
  root.replaceChildren();
  root.setAttribute('viewBox', `0 0 ${l.width} ${l.height}`);
  root.setAttribute('width', String(l.width));
  root.setAttribute('height', String(l.height));
  for (const b of l.boxes) drawBox(root, b, false);
  if (l.elsewhere !== null) drawBox(root, l.elsewhere, true);
}

function drawTimeline(list: HTMLOListElement, tl: Timeline): void {
  const items = tl.entries().map((t) => {
    const li = document.createElement('li');
    const e = t.event;
    li.dataset['testid'] = 'timeline-entry';
    li.dataset['kind'] = e.kind;
    if (e.how !== '') li.dataset['how'] = e.how;
    if (e.room !== '') li.dataset['room'] = e.room;
    if (e.epoch > 0) li.dataset['epoch'] = String(e.epoch);
    if (e.node !== '') li.dataset['node'] = e.node;
    if (t.gapMs !== null) li.dataset['gapMs'] = String(t.gapMs);
    li.className = `kind-${e.kind}${e.how ? ` how-${e.how}` : ''}${e.kind === 'node' ? ` to-${e.to}` : ''}`;
    const time = document.createElement('time');
    time.textContent = new Date(e.at).toLocaleTimeString(undefined, { hour12: false }) + '.' + String(e.at % 1000).padStart(3, '0');
    time.dateTime = new Date(e.at).toISOString();
    const what = document.createElement('span');
    what.textContent = describe(t);
    const who = document.createElement('small');
    who.textContent = ` seen by ${e.observer}`;
    li.append(time, ' ', what, who);
    return li;
  });
  list.replaceChildren(...items);
}

export function startClusterPage(doc: Document): void {
  const status = doc.getElementById('cluster-status') as HTMLElement;
  const picture = doc.getElementById('picture') as unknown as SVGSVGElement;
  const list = doc.getElementById('timeline') as HTMLOListElement;
  const summary = doc.getElementById('cluster-summary') as HTMLElement;
  const sources = new ClusterSources('', location.origin);
  const timeline = new Timeline(300);
  const lastIds = new Map<string, string>(); // source → last event id read from it
  let es: EventSource | null = null;
  let lastMessage = Date.now();
  let failures = 0;
  let state: ViewState | null = null;

  const where = (base: string) => (base === '' ? location.origin : base);
  const redraw = () => {
    if (state !== null) {
      const width = Math.max(picture.parentElement?.clientWidth ?? 960, 260);
      drawPicture(picture, layout(state, { width, boxWidth: 220, gap: 16, header: 70, chipHeight: 22, maxChips: 8 }));
      const leaders = Object.entries(state.leaders)
        .map(([s, n]) => `${s}: ${n || 'none'}`)
        .join(' · ');
      summary.textContent = `${state.roomsTotal} room${state.roomsTotal === 1 ? '' : 's'}${state.rooms.length < state.roomsTotal ? ` (${state.rooms.length} drawn)` : ''} · leaders: ${leaders}`;
    }
    drawTimeline(list, timeline);
  };

  const fail = (base: string, why: string) => {
    if (es === null) return;
    es.close();
    es = null;
    failures++;
    const next = sources.advance();
    status.dataset['state'] = 'failing';
    status.textContent = `${where(base)}: ${why}; moving to ${where(next)}`;
    // Straight to the next node; a pause once every node failed in a row.
    const delay = failures % sources.all().length === 0 ? 2000 : 200;
    setTimeout(connect, delay);
  };

  function connect(): void {
    const base = sources.current();
    timeline.connected();
    lastMessage = Date.now();
    const source = new EventSource(eventsUrl(base, lastIds.get(base) ?? ''));
    es = source;
    const mine = (f: (m: MessageEvent<string>) => void) => (m: Event) => {
      if (es !== source) return; // a stream given up on
      lastMessage = Date.now();
      try {
        f(m as MessageEvent<string>);
      } catch (e) {
        fail(base, `bad message: ${(e as Error).message}`);
      }
    };
    source.addEventListener(
      'state',
      mine((m) => {
        state = decodeState(JSON.parse(m.data));
        sources.learn(state.nodes);
        failures = 0;
        status.dataset['state'] = 'ok';
        status.dataset['node'] = state.node;
        status.textContent = `live from ${state.node} via ${where(base)}`;
        redraw();
      }),
    );
    source.addEventListener(
      'timeline',
      mine((m) => {
        const e = decodeEvent(JSON.parse(m.data));
        lastIds.set(base, e.id);
        if (timeline.add(e)) redraw();
      }),
    );
    source.addEventListener(
      'heartbeat',
      mine((m) => timeline.saw(decodeHeartbeat(JSON.parse(m.data)).at)),
    );
    source.addEventListener(
      'bye',
      mine(() => fail(base, 'the node is shutting down')),
    );
    // EventSource would retry the same node by itself: the page moves on instead, after asking the node once
    // why (EventSource hides the HTTP status, and an operator needs it: a 404 is a wrong URL, not a dead node).
    source.onerror = () => {
      if (es !== source) return;
      source.close();
      void whyFailed(eventsUrl(base)).then((why) => {
        if (es === source) fail(base, `the stream failed (${why})`);
      });
    };
  }

  setInterval(() => {
    if (es !== null && Date.now() - lastMessage > SILENCE_MS) fail(sources.current(), `silent for ${SILENCE_MS / 1000} s`);
  }, 1000);
  addEventListener('resize', () => redraw());
  connect();
}

if (typeof document !== 'undefined' && document.getElementById('cluster-status') !== null) {
  startClusterPage(document);
}
