// Tick buffer with epoch fencing, and interpolation by tick number.
//
// Fencing: a room's owner publishes ticks under an epoch (its lease). A tick
// with a lower epoch than one already accepted is never accepted (it comes from
// a deposed owner); within an epoch only a higher seq is accepted. A higher
// epoch resets the buffer, since the new owner's tick numbers need not continue
// the old owner's.
//
// Interpolation: the render clock counts ticks. It advances at the tick rate
// estimated from arrivals (default 20 Hz) and trails the newest tick by about
// two ticks; players are drawn between the two buffered ticks around it. The
// fields interpolated are the players' game fields x and y, whatever the game:
// a game whose players have a position names it so (docs/GAMES.md).

import type { TickMessage, TickPlayer } from './protocol';

export interface Snapshot {
  readonly epoch: number;
  readonly seq: number;
  /** Local clock (ms) when the tick arrived. */
  readonly arrival: number;
  readonly tick: TickMessage;
  /** Player id -> index in tick.players. */
  readonly index: Map<string, number>;
}

/** One interpolated player, reused between frames. */
export interface RenderPlayer {
  id: string;
  name: string;
  x: number;
  y: number;
  online: boolean;
}

export type PushResult = 'accepted' | 'stale-epoch' | 'stale-seq';

export interface SnapshotOptions {
  /** Ticks kept (default 32). */
  capacity?: number;
  /** Render delay in ticks (default 2). */
  delayTicks?: number;
  /** Tick rate assumed until estimated (default 20). */
  defaultRate?: number;
}

export function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

/**
 * Where the render tick rt falls between ticks aSeq <= rt <= bSeq: 0 at a, 1
 * at b, clamped to [0, 1]; 0 when a and b are the same tick.
 */
export function interpolationFactor(aSeq: number, bSeq: number, rt: number): number {
  if (bSeq <= aSeq) return 0;
  const t = (rt - aSeq) / (bSeq - aSeq);
  return t < 0 ? 0 : t > 1 ? 1 : t;
}

export class SnapshotBuffer {
  readonly capacity: number;
  readonly delayTicks: number;
  readonly defaultRate: number;

  private buf: Snapshot[] = [];
  private _epoch = -1;
  private _lastSeq = -1;
  private _renderTick = Number.NaN;
  private lastAdvance = Number.NaN;
  /** Accepted ticks over all time (for ticks/s). */
  accepted = 0;

  constructor(opts: SnapshotOptions = {}) {
    this.capacity = Math.max(2, opts.capacity ?? 32);
    this.delayTicks = opts.delayTicks ?? 2;
    this.defaultRate = opts.defaultRate ?? 20;
  }

  /** The epoch of the accepted ticks, -1 before the first. */
  get epoch(): number {
    return this._epoch;
  }

  /** The seq of the newest accepted tick, -1 before the first. */
  get lastSeq(): number {
    return this._lastSeq;
  }

  get size(): number {
    return this.buf.length;
  }

  get latest(): Snapshot | null {
    return this.buf[this.buf.length - 1] ?? null;
  }

  get oldest(): Snapshot | null {
    return this.buf[0] ?? null;
  }

  /** The current render position in ticks (NaN when nothing to render). */
  get renderTick(): number {
    return this._renderTick;
  }

  /** Offers a tick, applying epoch fencing. */
  push(tick: TickMessage, now: number): PushResult {
    if (tick.epoch < this._epoch) return 'stale-epoch';
    if (tick.epoch === this._epoch && tick.seq <= this._lastSeq) return 'stale-seq';
    if (tick.epoch > this._epoch) {
      this.buf = [];
      this._epoch = tick.epoch;
      this._renderTick = Number.NaN;
    }
    const index = new Map<string, number>();
    for (let i = 0; i < tick.players.length; i++) index.set((tick.players[i] as TickPlayer).id, i);
    this.buf.push({ epoch: tick.epoch, seq: tick.seq, arrival: now, tick, index });
    if (this.buf.length > this.capacity) this.buf.shift();
    this._lastSeq = tick.seq;
    this.accepted++;
    return 'accepted';
  }

  /** Forgets everything, including the fence (e.g. when switching rooms). */
  clear(): void {
    this.buf = [];
    this._epoch = -1;
    this._lastSeq = -1;
    this._renderTick = Number.NaN;
  }

  /**
   * Estimated ticks per second from the arrivals in the buffer (seq span over
   * arrival-time span, once the span is at least 500 ms), else the default.
   */
  rate(): number {
    const a = this.buf[0];
    const b = this.buf[this.buf.length - 1];
    if (a === undefined || b === undefined || b === a) return this.defaultRate;
    const dt = b.arrival - a.arrival;
    if (dt < 500) return this.defaultRate;
    const r = ((b.seq - a.seq) * 1000) / dt;
    return r < 1 ? 1 : r > 240 ? 240 : r;
  }

  /**
   * Advances the render clock to local time now (ms) and returns the render
   * tick. The clock runs at rate() and is steered towards
   * newest seq - delayTicks (+ the time since the newest arrival); it never
   * goes past the newest tick or before the oldest.
   */
  advance(now: number): number {
    const newest = this.latest;
    const oldest = this.oldest;
    if (newest === null || oldest === null) {
      this.lastAdvance = now;
      return this._renderTick;
    }
    const rate = this.rate();
    const since = Math.min(Math.max(0, now - newest.arrival), (this.delayTicks * 1000) / rate);
    const target = newest.seq - this.delayTicks + (since * rate) / 1000;
    let rt = this._renderTick;
    if (Number.isNaN(rt) || Number.isNaN(this.lastAdvance)) {
      rt = target;
    } else {
      const dt = Math.max(0, now - this.lastAdvance);
      rt += (dt * rate) / 1000;
      const err = target - rt;
      if (Math.abs(err) > 4 * this.delayTicks + 2) rt = target; // far off (gap, stall): snap
      else rt += err * Math.min(1, dt / 250); // else converge over ~250 ms
    }
    if (rt > newest.seq) rt = newest.seq;
    if (rt < oldest.seq) rt = oldest.seq;
    this._renderTick = rt;
    this.lastAdvance = now;
    return rt;
  }

  /**
   * Interpolates the players at render tick rt into out (objects reused) and
   * returns how many were written. Players of the newer tick are drawn; one
   * that is missing from the older tick appears at its newer position.
   */
  sample(rt: number, out: RenderPlayer[]): number {
    const n = this.buf.length;
    if (n === 0) return 0;
    // Find the last snapshot with seq <= rt (the buffer is short: linear scan
    // from the end, where the render tick usually is).
    let ai = n - 1;
    while (ai > 0 && (this.buf[ai] as Snapshot).seq > rt) ai--;
    const a = this.buf[ai] as Snapshot;
    const b = ai + 1 < n && a.seq <= rt ? (this.buf[ai + 1] as Snapshot) : a;
    const t = interpolationFactor(a.seq, b.seq, rt);
    const pb = b.tick.players;
    const pa = a.tick.players;
    for (let i = 0; i < pb.length; i++) {
      const p = pb[i] as TickPlayer;
      let r = out[i];
      if (r === undefined) {
        r = { id: '', name: '', x: 0, y: 0, online: true };
        out[i] = r;
      }
      r.id = p.id;
      r.name = p.name;
      r.online = p.online;
      const px = p.f['x'] ?? 0;
      const py = p.f['y'] ?? 0;
      const j = b === a ? undefined : a.index.get(p.id);
      if (j === undefined) {
        r.x = px;
        r.y = py;
      } else {
        const q = pa[j] as TickPlayer;
        r.x = lerp(q.f['x'] ?? px, px, t);
        r.y = lerp(q.f['y'] ?? py, py, t);
      }
    }
    return pb.length;
  }
}
