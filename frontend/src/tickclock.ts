// The tick clock: maps local time to the room's tick numbers from tick
// arrivals, measures their jitter, and chooses the render delay for
// interpolating other players.
//
// The line. Ticks are published every tickMs; a tick that met no queueing
// arrives earliest. The clock keeps the line t(seq) = anchorT + (seq -
// anchorSeq) * tickMs through the earliest arrivals of the last `window` ticks
// (each tick's lateness is its arrival minus the line; the line follows their
// minimum, moving at most slewMs per tick so that what is drawn does not jump,
// five times that when every recent tick is late: a slower path, or an owner
// that paused), and tickAt(now) inverts it. A new epoch (a new owner, whose
// tick numbers need not continue) re-anchors the line at its first tick; so
// does a shift of the last ticks by more than a second.
//
// The lag is how far the line runs ahead of the owner's ticks. It is set when
// the ticks stopped for more than 250 ms and the next two, arriving at their
// cadence, are both more than 250 ms late: an owner paused, and its tick
// numbers lost the time (the line needs three seconds to catch up with a
// 600 ms pause), or the path became that much slower. It is then the earliest
// lateness since, moved with the line as it catches up: it only shrinks, so
// jitter does not move it. Prediction subtracts it where the line stands for
// the owner's tick now, so that it follows the owner from the second tick
// after a pause (when the lateness percentile grows too) while others are
// drawn without a jump. Setting the lag is a shift of the ticks' timeline,
// counted in shifts: a lead learnt before it is no longer true, so the
// generation (anchors + shifts) changes too. A burst of ticks after the tab
// itself stalled is no shift.
//
// The render delay (in ticks behind tickAt(now)) is 1 (interpolation needs the
// next tick) + the 95th percentile of the window's lateness + a safety margin,
// bounded to [minDelay, maxDelay]; it moves towards that target at 2 ticks/s
// when growing and 0.5 tick/s when shrinking, so others never jump.
//
// Jitter (for the net graph) is RFC 3550's interarrival jitter: the smoothed
// |difference of transit times| of consecutive ticks.
//
// The tick rate is welcome.params.tick_rate when the server sends it
// (setTickRate(hz, true)); else 20 Hz, replaced by the measured rate if that
// differs by more than 15 % in two consecutive windows of two seconds.

import type { TickTimeline } from './predict/predictor';
import { DEFAULT_TICK_RATE } from './protocol';

export interface TickClockOptions {
  /** Nominal tick rate (default 20 Hz). */
  tickRate?: number;
  /** Ticks of lateness kept (default 40: two seconds at 20 Hz). */
  window?: number;
  /** Render delay bounds in ticks (default 1.5 and 4). */
  minDelay?: number;
  maxDelay?: number;
  /** Extra delay above 1 tick + the 95th percentile lateness, in ticks (default 0.5). */
  safety?: number;
  /** Largest move of the line per tick once established, ms (default 2). */
  slewMs?: number;
}

/**
 * Lateness of the last two ticks, after a silence as long, beyond which the owner's timeline has shifted from
 * the line (five ticks at 20 Hz): above the jitter of a slow path (behind a 150 ms proxy on the loaded 2-core
 * machine, the e2e page saw two ticks more than 150 ms late five times in a minute), below an owner's stall
 * there (0.3-0.6 s).
 */
const LAG_MS = 250;

export class TickClock implements TickTimeline {
  private _tickMs: number;
  private rateFixed = false;
  readonly window: number;
  readonly minDelay: number;
  readonly maxDelay: number;
  readonly safety: number;
  readonly slewMs: number;

  private epoch = -1;
  private anchorSeq = Number.NaN;
  private anchorT = Number.NaN;
  private sinceAnchor = 0;
  // Rate measurement: the start of the current window, and the previous window's rate.
  private firstSeq = 0;
  private firstArrival = 0;
  private prevRate = Number.NaN;

  private readonly late: Float64Array;
  private readonly scratch: Float64Array;
  private lateHead = 0;
  private lateN = 0;
  private lastSeq = Number.NaN;
  private lastArrival = Number.NaN;

  private targetDelay: number;
  private delay: number;
  private lastDelayAt = Number.NaN;

  /** RFC 3550 interarrival jitter, ms. */
  jitterMs = 0;
  /** Arrival gap between the last two ticks, ms (NaN before two). */
  lastGapMs = Number.NaN;
  /** Lateness of the last tick behind the line, ms. */
  lastLateMs = 0;
  /** 95th percentile lateness over the window, ms. */
  lateP95Ms = 0;
  /** Times the line was re-anchored (epochs, shifts of more than a second): tick positions of different anchors do not compare. */
  anchors = 0;
  /** Times the ticks' timeline shifted by more than 250 ms without a re-anchoring (the lag was set). */
  shifts = 0;
  /** How far the line runs ahead of the owner's ticks, ms (the lag above). */
  lagMs = 0;

  constructor(opts: TickClockOptions = {}) {
    this._tickMs = 1000 / (opts.tickRate ?? DEFAULT_TICK_RATE);
    this.window = Math.max(4, opts.window ?? 40);
    this.minDelay = opts.minDelay ?? 1.5;
    this.maxDelay = opts.maxDelay ?? 4;
    this.safety = opts.safety ?? 0.5;
    this.slewMs = opts.slewMs ?? 2;
    this.late = new Float64Array(this.window);
    this.scratch = new Float64Array(this.window);
    this.targetDelay = this.minDelay;
    this.delay = this.minDelay;
  }

  get tickMs(): number {
    return this._tickMs;
  }

  /** Ticks per second in use. */
  get tickRate(): number {
    return 1000 / this._tickMs;
  }

  /** The render delay in use (ticks) and the one it moves towards. */
  get delayTicks(): number {
    return this.delay;
  }

  get targetDelayTicks(): number {
    return this.targetDelay;
  }

  /** Sets the nominal rate; fixed = announced by the server (never replaced by a measurement). */
  setTickRate(hz: number, fixed: boolean): void {
    if (!(hz > 0 && hz <= 1000)) return;
    this.rateFixed = fixed;
    const ms = 1000 / hz;
    if (ms === this._tickMs) return;
    // Keep the line continuous at the last tick seen.
    if (!Number.isNaN(this.lastSeq)) {
      this.anchorT = this.lineAt(this.lastSeq);
      this.anchorSeq = this.lastSeq;
    }
    this._tickMs = ms;
    this.firstSeq = this.anchorSeq;
    this.firstArrival = this.anchorT;
  }

  /** Forgets everything (another room). */
  reset(): void {
    this.epoch = -1;
    this.anchorSeq = Number.NaN;
    this.anchorT = Number.NaN;
    this.lateN = 0;
    this.lastSeq = Number.NaN;
    this.lastArrival = Number.NaN;
    this.lastGapMs = Number.NaN;
  }

  /** The 95th percentile lateness in ticks (TickTimeline.lateTicks). */
  get lateTicks(): number {
    return this.lateP95Ms / this._tickMs;
  }

  /** Changes whenever the line is re-anchored or the ticks' timeline shifts (TickTimeline.generation). */
  get generation(): number {
    return this.anchors + this.shifts;
  }

  /** The lag in ticks (TickTimeline.lagTicks). */
  get lagTicks(): number {
    return this.lagMs / this._tickMs;
  }

  /** The fractional tick whose earliest arrival is at local time now; NaN before the first tick. */
  tickAt(now: number): number {
    return this.anchorSeq + (now - this.anchorT) / this._tickMs;
  }

  /**
   * The tick to draw others at, at local time now: tickAt(now) minus the
   * render delay, which moves towards its target here (call once per frame).
   */
  renderTick(now: number): number {
    if (!Number.isNaN(this.lastDelayAt)) {
      const dt = Math.min(Math.max(0, now - this.lastDelayAt), 250) / 1000;
      if (this.targetDelay > this.delay) this.delay = Math.min(this.targetDelay, this.delay + 2 * dt);
      else this.delay = Math.max(this.targetDelay, this.delay - 0.5 * dt);
    }
    this.lastDelayAt = now;
    return this.tickAt(now) - this.delay;
  }

  /** Records an accepted tick (after epoch fencing): its epoch, seq and local arrival time (ms). */
  observe(epoch: number, seq: number, arrival: number): void {
    if (epoch !== this.epoch || Number.isNaN(this.anchorSeq)) {
      this.epoch = epoch;
      this.anchor(seq, arrival, true);
      this.lastSeq = seq;
      this.lastArrival = arrival;
      this.lastGapMs = Number.NaN;
      return;
    }
    if (seq <= this.lastSeq) return; // not newer: the buffer fences these, nothing to learn
    const gap = arrival - this.lastArrival;
    const prevGap = this.lastGapMs;
    this.lastGapMs = gap;
    const d = gap - (seq - this.lastSeq) * this._tickMs;
    this.jitterMs += (Math.abs(d) - this.jitterMs) / 16;
    this.lastSeq = seq;
    this.lastArrival = arrival;
    this.sinceAnchor++;

    const lateness = arrival - this.lineAt(seq);
    this.late[this.lateHead] = lateness;
    this.lateHead = (this.lateHead + 1) % this.window;
    if (this.lateN < this.window) this.lateN++;

    if (this.offBy(1000)) {
      // The last ticks are all more than a second off the line (a suspended tab, a wrong rate): start again here.
      this.anchor(seq, arrival, false);
      this.checkRate(seq, arrival);
      return;
    }
    // Follow the earliest arrival of the window; when even the earliest of the last ten ticks is 50 ms late, the
    // path got slower or the owner paused (its tick numbers lost the time): follow that, five times faster. The
    // line never jumps: others slow down or speed up by at most a fifth while it moves.
    let min = Infinity;
    for (let i = 0; i < this.lateN; i++) min = Math.min(min, this.late[i] as number);
    const recent = this.recentMin(10);
    let target = min;
    let slew = this.slewMs;
    if (this.sinceAnchor < 10) slew = 10 * this.slewMs;
    else if (recent > 50) {
      target = recent;
      slew = 5 * this.slewMs;
    } else if (min < -50) slew = 5 * this.slewMs;
    const shift = target < -slew ? -slew : target > slew ? slew : target;
    if (shift !== 0) {
      this.anchorT += shift;
      for (let i = 0; i < this.lateN; i++) this.late[i] = (this.late[i] as number) - shift;
    }
    this.lastLateMs = lateness - shift;
    // The lag: set by a silence, then two late ticks at their cadence (not a burst); then the earliest lateness
    // since, moved with the line, so it only shrinks (jitter does not move it), and released within two slews.
    const r2 = this.recentMin(2);
    let lag = this.lagMs > 0 ? Math.min(this.lagMs - shift, r2) : 0;
    if (lag <= 2 * this.slewMs) lag = 0;
    if (r2 > lag + LAG_MS && gap >= this._tickMs / 2 && prevGap >= this._tickMs + LAG_MS) {
      lag = r2;
      this.shifts++;
    }
    this.lagMs = lag;
    this.updateDelay();
    this.checkRate(seq, arrival);
  }

  // -------------------------------------------------------------------------

  private lineAt(seq: number): number {
    return this.anchorT + (seq - this.anchorSeq) * this._tickMs;
  }

  /** Starts the line at this tick; newSegment also restarts the rate measurement (new epoch, new rate). */
  private anchor(seq: number, arrival: number, newSegment: boolean): void {
    this.anchorSeq = seq;
    this.anchorT = arrival;
    if (newSegment) {
      this.firstSeq = seq;
      this.firstArrival = arrival;
      this.prevRate = Number.NaN;
    }
    this.sinceAnchor = 0;
    this.late[0] = 0;
    this.lateN = 1;
    this.lateHead = 1 % this.window;
    this.lastLateMs = 0;
    this.lagMs = 0;
    this.anchors++;
    this.updateDelay();
  }

  /** True when the last three ticks are all more than ms late, or all more than ms early. */
  private offBy(ms: number): boolean {
    if (this.lateN < 3) return false;
    let late = 0;
    let early = 0;
    for (let i = 1; i <= 3; i++) {
      const v = this.late[(this.lateHead - i + this.window) % this.window] as number;
      if (v > ms) late++;
      else if (v < -ms) early++;
    }
    return late === 3 || early === 3;
  }

  /** The smallest lateness of the last n ticks. */
  private recentMin(n: number): number {
    const k = Math.min(n, this.lateN);
    let m = Infinity;
    for (let i = 1; i <= k; i++) m = Math.min(m, this.late[(this.lateHead - i + this.window) % this.window] as number);
    return m;
  }

  private updateDelay(): void {
    const n = this.lateN;
    const s = this.scratch;
    for (let i = 0; i < n; i++) {
      const x = this.late[i] as number;
      let j = i - 1;
      while (j >= 0 && (s[j] as number) > x) {
        s[j + 1] = s[j] as number;
        j--;
      }
      s[j + 1] = x;
    }
    const p95 = Math.max(0, s[Math.min(n - 1, Math.floor(0.95 * n))] as number);
    this.lateP95Ms = p95;
    const target = 1 + p95 / this._tickMs + this.safety;
    this.targetDelay = Math.min(this.maxDelay, Math.max(this.minDelay, target));
  }

  /**
   * Without a rate from the server: adopt the measured one when 20 Hz is
   * clearly wrong. The rate is measured over consecutive windows of at least
   * two seconds; it is adopted when two windows in a row are more than 15 %
   * off and agree within 5 % (an owner's pause slows one window only).
   */
  private checkRate(seq: number, arrival: number): void {
    if (this.rateFixed) return;
    const span = arrival - this.firstArrival;
    if (span < 2000 || seq - this.firstSeq < 10) return;
    const measured = ((seq - this.firstSeq) * 1000) / span;
    this.firstSeq = seq;
    this.firstArrival = arrival;
    const nominal = 1000 / this._tickMs;
    const prev = this.prevRate;
    this.prevRate = measured;
    if (Math.abs(measured - nominal) / nominal <= 0.15) return;
    if (Number.isNaN(prev) || Math.abs(prev - measured) / measured > 0.05) return;
    this.setTickRate(Math.round(measured), false);
    this.anchor(seq, arrival, true);
  }
}
