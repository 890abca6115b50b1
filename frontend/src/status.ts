// Status panel and connection banner. The panel shows the connected node, the
// room's owner and epoch, ticks/s, RTT, reconnect attempt and time to the next
// retry, and players online; every field has a data-testid. The banner is shown
// while connecting or reconnecting, and as a terminal message (45xx) when the
// client has stopped.

import type { TransportState } from './transport';

export interface StatusModel {
  state: TransportState;
  room: string;
  /** The game the room plays, as the page calls it ('' before the welcome). */
  game: string;
  player: string;
  node: string;
  endpoint: string;
  owner: string;
  epoch: number;
  lastSeq: number;
  tps: number;
  rttMs: number | null;
  attempt: number;
  /** ms until the next connection attempt, null when not waiting. */
  retryInMs: number | null;
  players: number;
  online: number;
  closeReason: string;
  stopReason: string;
  stopCode: number;
  lastError: string;
}

export type BannerKind = 'none' | 'connecting' | 'reconnecting' | 'terminal';

export function bannerFor(m: StatusModel): { kind: BannerKind; text: string } {
  const retry =
    m.retryInMs !== null ? ` — attempt ${m.attempt}, next try in ${(m.retryInMs / 1000).toFixed(1)} s` : m.attempt > 0 ? ` — attempt ${m.attempt + 1}` : '';
  switch (m.state) {
    case 'connected':
      return { kind: 'none', text: '' };
    case 'connecting':
      return { kind: 'connecting', text: `Connecting to the game server…${retry}` };
    case 'reconnecting': {
      const why = m.closeReason !== '' ? ` (${m.closeReason})` : '';
      return { kind: 'reconnecting', text: `Disconnected${why}. Reconnecting…${retry}` };
    }
    case 'stopped': {
      const code = m.stopCode > 0 ? ` [${m.stopCode}]` : '';
      return { kind: 'terminal', text: `Stopped: ${m.stopReason}${code}. Reload the page to play again.` };
    }
  }
}

/** Counts events in the last second. Fixed memory. */
export class RateMeter {
  private readonly times: Float64Array;
  private head = 0;
  private n = 0;

  constructor(capacity = 512) {
    this.times = new Float64Array(capacity);
  }

  add(now: number): void {
    this.times[this.head] = now;
    this.head = (this.head + 1) % this.times.length;
    if (this.n < this.times.length) this.n++;
  }

  /** Events within (now - windowMs, now], scaled to per second. */
  rate(now: number, windowMs = 1000): number {
    let count = 0;
    const cap = this.times.length;
    for (let i = 1; i <= this.n; i++) {
      const t = this.times[(this.head - i + cap) % cap] as number;
      if (now - t >= windowMs) break;
      count++;
    }
    return (count * 1000) / windowMs;
  }
}

interface Field {
  key: keyof StatusModel | 'retry';
  label: string;
  testid: string;
}

const FIELDS: Field[] = [
  { key: 'state', label: 'state', testid: 'status-state' },
  { key: 'room', label: 'room', testid: 'status-room' },
  { key: 'game', label: 'game', testid: 'status-game' },
  { key: 'player', label: 'player', testid: 'status-player' },
  { key: 'node', label: 'node', testid: 'status-node' },
  { key: 'owner', label: 'owner', testid: 'status-owner' },
  { key: 'epoch', label: 'epoch', testid: 'status-epoch' },
  { key: 'lastSeq', label: 'tick', testid: 'status-tick' },
  { key: 'tps', label: 'ticks/s', testid: 'status-tps' },
  { key: 'rttMs', label: 'RTT', testid: 'status-rtt' },
  { key: 'online', label: 'players online', testid: 'status-players' },
  { key: 'attempt', label: 'reconnect attempt', testid: 'status-attempt' },
  { key: 'retry', label: 'next retry', testid: 'status-retry' },
  { key: 'lastError', label: 'last error', testid: 'status-error' },
];

function formatField(key: Field['key'], m: StatusModel): string {
  switch (key) {
    case 'retry':
      return m.retryInMs === null ? '—' : `${(m.retryInMs / 1000).toFixed(1)} s`;
    case 'rttMs':
      return m.rttMs === null ? '—' : `${Math.round(m.rttMs)} ms`;
    case 'tps':
      return m.tps.toFixed(0);
    case 'epoch':
    case 'lastSeq':
      return m[key] < 0 ? '—' : String(m[key]);
    case 'online':
      return `${m.online} / ${m.players}`;
    default: {
      const v = m[key];
      return v === '' ? '—' : String(v);
    }
  }
}

export class StatusPanel {
  private readonly values = new Map<Field['key'], HTMLElement>();
  private readonly shown = new Map<Field['key'], string>();
  private readonly banner: HTMLElement;
  private bannerText = '';
  private bannerKind: BannerKind | '' = '';

  constructor(panel: HTMLElement, banner: HTMLElement) {
    const doc = panel.ownerDocument;
    const dl = doc.createElement('dl');
    for (const f of FIELDS) {
      const dt = doc.createElement('dt');
      dt.textContent = f.label;
      const dd = doc.createElement('dd');
      dd.dataset['testid'] = f.testid;
      dd.textContent = '—';
      dl.append(dt, dd);
      this.values.set(f.key, dd);
    }
    panel.append(dl);
    this.banner = banner;
    banner.dataset['testid'] = 'status-banner';
  }

  /** Updates the DOM where something changed. */
  update(m: StatusModel): void {
    for (const f of FIELDS) {
      const text = formatField(f.key, m);
      if (this.shown.get(f.key) === text) continue;
      this.shown.set(f.key, text);
      (this.values.get(f.key) as HTMLElement).textContent = text;
    }
    const b = bannerFor(m);
    if (b.kind !== this.bannerKind) {
      this.bannerKind = b.kind;
      this.banner.dataset['kind'] = b.kind;
      this.banner.hidden = b.kind === 'none';
    }
    if (b.text !== this.bannerText) {
      this.bannerText = b.text;
      this.banner.textContent = b.text;
    }
  }
}
