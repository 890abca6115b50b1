// The cluster view (cluster.html): polls /api/cluster every second and shows
// the nodes (readiness, sockets, rooms owned) and rooms (owner, epoch). It is served by a
// node's admin listener (-admin-http), as /api/cluster is; when the page's own
// origin stops answering, it polls the admin listeners of the other nodes it
// has learned about.

import './style.css';

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
  /** Rooms held per node (every node with a session, 0 included). */
  owners: Record<string, number>;
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
  const owners: Record<string, number> = {};
  const ow = o['owners'];
  if (ow !== undefined && ow !== null) {
    for (const [k, n] of Object.entries(obj(ow, 'owners'))) {
      if (typeof n === 'number') owners[k] = n;
    }
  }
  return {
    owners,
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

  constructor(private readonly origin: string) {
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
      if (!next.includes(base)) next.push(base);
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

// ---------------------------------------------------------------------------
// Page

function cell(row: HTMLTableRowElement, text: string, testid?: string): void {
  const td = row.insertCell();
  td.textContent = text;
  if (testid !== undefined) td.dataset['testid'] = testid;
}

function render(info: ClusterInfo, nodesBody: HTMLTableSectionElement, roomsBody: HTMLTableSectionElement): void {
  nodesBody.replaceChildren();
  for (const n of [...info.nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    const row = nodesBody.insertRow();
    row.dataset['testid'] = `node-${n.name}`;
    row.className = n.ready ? 'ready' : 'not-ready';
    cell(row, n.name + (n.name === info.node ? ' (answering)' : ''), 'node-name');
    cell(row, n.ready ? 'ready' : 'not ready', 'node-ready');
    cell(row, String(n.sockets), 'node-sockets');
    cell(row, String(info.owners[n.name] ?? info.rooms.filter((r) => r.owner === n.name).length), 'node-rooms');
    cell(row, n.url, 'node-url');
  }
  roomsBody.replaceChildren();
  for (const r of [...info.rooms].sort((a, b) => a.room.localeCompare(b.room))) {
    const row = roomsBody.insertRow();
    row.dataset['testid'] = `room-${r.room}`;
    cell(row, r.room, 'room-name');
    cell(row, r.owner === '' ? '(none)' : r.owner, 'room-owner');
    cell(row, String(r.epoch), 'room-epoch');
  }
}

const POLL_MS = 1000;
const TIMEOUT_MS = 900;

export function startClusterPage(doc: Document): void {
  const status = doc.getElementById('cluster-status') as HTMLElement;
  const nodesBody = (doc.getElementById('nodes') as HTMLTableElement).tBodies[0] as HTMLTableSectionElement;
  const roomsBody = (doc.getElementById('rooms') as HTMLTableElement).tBodies[0] as HTMLTableSectionElement;
  const sources = new ClusterSources('');
  let failures = 0;

  const poll = async () => {
    const base = sources.current();
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(clusterUrl(base), { signal: ctrl.signal, cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const info = decodeCluster(await res.json());
      sources.learn(info.nodes);
      render(info, nodesBody, roomsBody);
      failures = 0;
      status.dataset['state'] = 'ok';
      status.textContent = `from ${info.node || '?'} via ${base === '' ? location.origin : base} at ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      failures++;
      const next = sources.advance();
      status.dataset['state'] = 'failing';
      status.textContent = `${base === '' ? location.origin : base} failed (${(e as Error).message}); trying ${next === '' ? location.origin : next} next`;
    } finally {
      clearTimeout(timer);
      setTimeout(() => void poll(), failures > 0 && failures % sources.all().length === 0 ? POLL_MS * 2 : POLL_MS);
    }
  };
  void poll();
}

if (typeof document !== 'undefined' && document.getElementById('cluster-status') !== null) {
  startClusterPage(document);
}
