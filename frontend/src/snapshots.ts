// Tick buffer with epoch fencing, and interpolation by tick number.
//
// Fencing: a room's owner publishes ticks under an epoch (its lease). A tick
// with a lower epoch than one already accepted is never accepted (it comes from
// a deposed owner); within an epoch only a higher seq is accepted. A higher
// epoch resets the buffer, since the new owner's tick numbers need not continue
// the old owner's.
//
// Interpolation: the render clock follows the tick clock (tickclock.ts) minus
// its adaptive render delay, which follows the measured arrival jitter, at a
// bounded pace (see advance); players are drawn between the two buffered ticks
// around it. When the next tick is late, players are extrapolated by their
// velocity for at most one tick. The fields used are the players' game fields
// x and y, and vx and vy (per tick) when the game has them, whatever the game:
// a game whose players have a position names it so (docs/GAMES.md).

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

type MutableSnapshot = { -readonly [K in keyof Snapshot]: Snapshot[K] } & { index: Map<string, number> };

/** One interpolated player, reused between frames. */
export interface RenderPlayer {
  id: string;
  name: string;
  x: number;
  y: number;
  online: boolean;
}

/** Limits on how far a drawn player moves in one frame (see SnapshotBuffer.sample). */
export interface MoveLimit {
  /** Largest move per axis in this frame, world units. */
  step: number;
  /** A target further than this (per axis) is jumped to at once: a teleport, a failover. */
  snap: number;
}

export type PushResult = 'accepted' | 'stale-epoch' | 'stale-seq';

export interface SnapshotOptions {
  /** Ticks kept (default 32). */
  capacity?: number;
  /** The tick clock fed by push (default: a new TickClock with its defaults). */
  clock?: TickClock;
  /** Ticks players may be extrapolated past the newest tick (default 1). */
  maxExtrapolation?: number;
  /** The render tick jumps to the clock's when further than this (default 20 ticks: a second at 20 Hz). */
  snapTicks?: number;
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

  private buf: MutableSnapshot[] = [];
  private spare: MutableSnapshot[] = [];
  private _epoch = -1;
  private _lastSeq = -1;
  private _renderTick = Number.NaN;
  private lastAdvance = Number.NaN;
  /** A render tick further than this from the clock's jumps to it (ticks). */
  readonly snapTicks: number;
  /** Accepted ticks over all time (for ticks/s). */
  accepted = 0;
  /** Frames sampled past the newest tick (extrapolated), over all time. */
  extrapolated = 0;
  /** Players written by the last sample (the entries of out that belong to the last frame). */
  private sampled = 0;

  constructor(opts: SnapshotOptions = {}) {
    this.capacity = Math.max(2, opts.capacity ?? 32);
    this.clock = opts.clock ?? new TickClock();
    this.maxExtrapolation = opts.maxExtrapolation ?? 1;
    this.snapTicks = opts.snapTicks ?? 20;
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

  /**
   * Offers a tick, applying epoch fencing. The buffer keeps the tick object (its capacity of them): a decoder
   * that reuses tick objects (frames.ts) must not reuse one sooner.
   */
  push(tick: TickMessage, now: number): PushResult {
    if (tick.epoch < this._epoch) return 'stale-epoch';
    if (tick.epoch === this._epoch && tick.seq <= this._lastSeq) return 'stale-seq';
    if (tick.epoch > this._epoch) {
      for (const s of this.buf) this.spare.push(s);
      this.buf.length = 0;
      this._epoch = tick.epoch;
      this._renderTick = Number.NaN;
    }
    // Snapshots (and their index maps) are reused: no allocation per tick once the buffer is full.
    const snap = this.spare.pop() ?? { epoch: 0, seq: 0, arrival: 0, tick, index: new Map<string, number>() };
    snap.epoch = tick.epoch;
    snap.seq = tick.seq;
    snap.arrival = now;
    snap.tick = tick;
    snap.index.clear();
    for (let i = 0; i < tick.players.length; i++) snap.index.set((tick.players[i] as TickPlayer).id, i);
    this.buf.push(snap);
    if (this.buf.length > this.capacity) this.spare.push(this.buf.shift() as MutableSnapshot);
    this._lastSeq = tick.seq;
    this.accepted++;
    this.clock.observe(tick.epoch, tick.seq, now);
    return 'accepted';
  }

  /** Forgets everything, including the fence (e.g. when switching rooms). */
  clear(): void {
    for (const s of this.buf) this.spare.push(s);
    this.buf.length = 0;
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
   * tick, NaN before the first tick. It follows the tick clock's render tick
   * without jumps: it never goes back (it waits), runs at most 10 % faster
   * than real time (twice as fast while more than two ticks behind), and never
   * more than one tick per frame, so that nobody drawn moves more in a frame
   * than their speed allows; only a gap of more than snapTicks (a stall, a
   * suspended tab) is jumped. It stays within [oldest, newest +
   * maxExtrapolation].
   */
  advance(now: number): number {
    const newest = this.latest;
    const oldest = this.oldest;
    const target = this.clock.renderTick(now);
    const prev = this._renderTick;
    const last = this.lastAdvance;
    this.lastAdvance = now;
    if (newest === null || oldest === null || Number.isNaN(target)) {
      this._renderTick = newest === null ? Number.NaN : newest.seq;
      return this._renderTick;
    }
    let rt = target;
    if (!Number.isNaN(prev) && !Number.isNaN(last) && Math.abs(target - prev) <= this.snapTicks) {
      const f = Math.max(0, now - last) / this.clock.tickMs;
      const step = Math.min((target - prev > 2 ? 2 : 1.1) * f, Math.max(1, f));
      rt = target > prev + step ? prev + step : target < prev ? prev : target;
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
   *
   * With a limit, a player drawn at the same index in the last call (same id)
   * moves at most limit.step per axis towards its interpolated position, unless
   * that is more than limit.snap away: a late tick that shows a player turned
   * while it was extrapolated is caught up over a few frames, not in one jump.
   */
  sample(rt: number, out: RenderPlayer[], limit?: MoveLimit): number {
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
    const w = b.tick.g['width'] ?? Infinity;
    const h = b.tick.g['height'] ?? Infinity;
    for (let i = 0; i < pb.length; i++) {
      const p = pb[i] as TickPlayer;
      let r = out[i];
      if (r === undefined) {
        r = { id: '', name: '', x: Number.NaN, y: Number.NaN, online: true };
        out[i] = r;
      }
      const same = r.id === p.id && i < this.sampled;
      r.id = p.id;
      r.name = p.name;
      r.online = p.online;
      const px = p.f['x'] ?? 0;
      const py = p.f['y'] ?? 0;
      let x: number;
      let y: number;
      const j = b === a ? undefined : a.index.get(p.id);
      if (j === undefined) {
        x = ex === 0 ? px : clamp(px + (p.f['vx'] ?? 0) * ex, 0, w);
        y = ex === 0 ? py : clamp(py + (p.f['vy'] ?? 0) * ex, 0, h);
      } else {
        const q = pa[j] as TickPlayer;
        x = lerp(q.f['x'] ?? px, px, t);
        y = lerp(q.f['y'] ?? py, py, t);
      }
      if (limit !== undefined && same && Math.abs(x - r.x) <= limit.snap && Math.abs(y - r.y) <= limit.snap) {
        x = clamp(x, r.x - limit.step, r.x + limit.step);
        y = clamp(y, r.y - limit.step, r.y + limit.step);
      }
      r.x = x;
      r.y = y;
    }
    this.sampled = pb.length;
    return pb.length;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
