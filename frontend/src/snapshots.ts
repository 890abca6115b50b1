// Tick buffer with epoch fencing, and interpolation by tick number.
//
// Fencing: a room's owner publishes ticks under an epoch (its lease). A tick
// with a lower epoch than one already accepted is never accepted (it comes from
// a deposed owner); within an epoch only a higher seq is accepted. A higher
// epoch resets the buffer, since the new owner's tick numbers need not continue
// the old owner's.
//
// Interpolation: the render clock is the tick clock (tickclock.ts) minus its
// adaptive render delay, which follows the measured arrival jitter; players are
// drawn between the two buffered ticks around it. When the next tick is late,
// players are extrapolated by their velocity for at most one tick.

import type { TickMessage, TickPlayer } from './protocol';
import { TickClock } from './tickclock';

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
  /** The tick clock fed by push (default: a new TickClock with its defaults). */
  clock?: TickClock;
  /** Ticks players may be extrapolated past the newest tick (default 1). */
  maxExtrapolation?: number;
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
  readonly clock: TickClock;
  readonly maxExtrapolation: number;

  private buf: Snapshot[] = [];
  private _epoch = -1;
  private _lastSeq = -1;
  private _renderTick = Number.NaN;
  /** Accepted ticks over all time (for ticks/s). */
  accepted = 0;
  /** Frames sampled past the newest tick (extrapolated), over all time. */
  extrapolated = 0;

  constructor(opts: SnapshotOptions = {}) {
    this.capacity = Math.max(2, opts.capacity ?? 32);
    this.clock = opts.clock ?? new TickClock();
    this.maxExtrapolation = opts.maxExtrapolation ?? 1;
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
    this.clock.observe(tick.epoch, tick.seq, now);
    return 'accepted';
  }

  /** Forgets everything, including the fence (e.g. when switching rooms). */
  clear(): void {
    this.buf = [];
    this._epoch = -1;
    this._lastSeq = -1;
    this._renderTick = Number.NaN;
    this.clock.reset();
  }

  /** The tick rate in use (ticks per second). */
  rate(): number {
    return this.clock.tickRate;
  }

  /**
   * Advances the render clock to local time now (ms) and returns the render
   * tick: the tick clock's render tick, kept within [oldest, newest +
   * maxExtrapolation]. NaN before the first tick.
   */
  advance(now: number): number {
    const newest = this.latest;
    const oldest = this.oldest;
    let rt = this.clock.renderTick(now);
    if (newest === null || oldest === null || Number.isNaN(rt)) {
      this._renderTick = newest === null ? Number.NaN : newest.seq;
      return this._renderTick;
    }
    if (rt > newest.seq + this.maxExtrapolation) rt = newest.seq + this.maxExtrapolation;
    if (rt < oldest.seq) rt = oldest.seq;
    this._renderTick = rt;
    return rt;
  }

  /**
   * Interpolates the players at render tick rt into out (objects reused) and
   * returns how many were written. Players of the newer tick are drawn; one
   * that is missing from the older tick appears at its newer position. Past
   * the newest tick, players move on by their velocity (vx, vy per tick) for
   * at most maxExtrapolation ticks, within the arena.
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
    // Extrapolation: the render tick is past the newest tick (it is late).
    let ex = b === a && ai === n - 1 ? rt - a.seq : 0;
    if (!(ex > 0)) ex = 0;
    else {
      if (ex > this.maxExtrapolation) ex = this.maxExtrapolation;
      this.extrapolated++;
    }
    const w = b.tick.width;
    const h = b.tick.height;
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
      const j = b === a ? undefined : a.index.get(p.id);
      if (j === undefined) {
        r.x = ex === 0 ? p.x : clamp(p.x + p.vx * ex, 0, w);
        r.y = ex === 0 ? p.y : clamp(p.y + p.vy * ex, 0, h);
      } else {
        const q = pa[j] as TickPlayer;
        r.x = lerp(q.x, p.x, t);
        r.y = lerp(q.y, p.y, t);
      }
    }
    return pb.length;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
