// Client-side prediction with server reconciliation, for any game whose
// player moves by an integer rule once per server tick.
//
// The model. The server applies an input when it reaches the room's owner, at
// the next tick (step); the client cannot see when that is, only, for each
// input, the first tick whose ack covers it. From those it estimates the lead:
// how many ticks pass between sending an input (mapped to the owner's tick
// number by the tick clock, TickTimeline: tickAt(t) - lagTicks) and the tick
// that applies it. An input sent at local time t is then predicted to take
// effect at tick ceil(tickAt(t) - lagTicks + lead). The lag matters after an
// owner paused: its tick numbers lost the time, and the clock's line, which
// moves slowly for the others drawn, runs ahead of them for seconds; a held
// key replayed up to the line would run that far ahead of the server. A
// shift of the ticks' timeline changes the clock's generation, which drops
// the lead samples learnt before it.
//
// Only inputs sent on the current clock line, acknowledged by the tick after
// one seen without them on that line, and within maxLead count: an input sent
// while the room had no owner waited for one, and an ack (applied and stored)
// can lag the application by seconds while the input stream elects a leader;
// neither wait is the lead, and a lead that includes it runs P that far ahead.
//
// On every tick (reconcile) the server's state of the own player becomes the
// base, inputs at or below its ack are dropped, and the rest are replayed in
// seq order, each from its predicted tick, up to the tick being decided now
// (tickAt(now) - lagTicks + lead) plus the fraction of the tick in progress,
// which uses the keys held now. That is the predicted position P. It moves as
// soon as a key changes, never runs more than a few ticks past the newest
// server tick (so the avatar stops when ticks stop, e.g. during a failover),
// and equals the server's state once every input is acknowledged.
//
// What is drawn (x, y) follows P: each frame it moves with the velocity of
// the tick in progress (so a key press shows on the next frame whatever the
// tick phase) and is pulled towards P with time constant tauMs; a difference
// larger than snapDistance (a teleport, a failover to an older state) is
// snapped at once. Nothing here allocates per frame or per tick.

/** Maps local time to server ticks (implemented by TickClock). */
export interface TickTimeline {
  /** The fractional tick whose earliest arrival is at local time now (ms); NaN before the first tick. */
  tickAt(now: number): number;
  /** Milliseconds per tick. */
  readonly tickMs: number;
  /** Changes when the mapping is re-anchored (a new epoch) or the ticks' timeline shifts (a lag is set): tick positions and leads from before do not compare. */
  readonly generation: number;
  /** How late ticks usually arrive behind the mapping (95th percentile), in ticks. */
  readonly lateTicks: number;
  /**
   * How far the mapping runs ahead of the owner's ticks, in ticks: 0 on a steady path; after an owner paused (its
   * tick numbers lost the time), the part of the pause the mapping has not followed yet (it moves slowly, for the
   * others drawn). The owner's tick at local time t is tickAt(t) - lagTicks. Setting a lag changes the generation.
   */
  readonly lagTicks: number;
}

/**
 * A game's rules for one player, as the reconciler replays them. S is a
 * mutable state object (copied into preallocated scratch states), I an input.
 */
export interface PredictionRules<S, I> {
  create(): S;
  copy(dst: S, src: Readonly<S>): S;
  /** Applies a local input with its seq as the server would; false when ignored (seq at or below ack). */
  input(s: S, seq: number, input: I): boolean;
  /** Applies the join of a new connection (the hello's seq) as the server would. */
  join(s: S, seq: number): boolean;
  /** One server tick. */
  step(s: S): void;
  /** The highest seq the state has applied. */
  ack(s: Readonly<S>): number;
  x(s: Readonly<S>): number;
  y(s: Readonly<S>): number;
  /** Where the drawn position may go: [0, width] x [0, height]. */
  bounds(): { readonly width: number; readonly height: number };
}

/**
 * The optional predictor hook of a game module (see #16): the client calls
 * join/input as it sends, reconcile on every accepted tick that has the own
 * player, and frame once per animation frame, then draws (x, y).
 */
export interface Predictor<S, I> {
  /** True once a server state has been adopted. */
  readonly ready: boolean;
  /** The position to draw (after frame). */
  readonly x: number;
  readonly y: number;
  readonly stats: Readonly<PredictionStats>;
  /** Forgets everything (another room, a new identity). */
  clear(): void;
  /** Adopts a server state as it is and shows it at once (no smoothing); pending inputs above its ack are kept. */
  reset(server: Readonly<S>, tick: number, now: number): void;
  /** The hello of a new connection was sent with this seq. */
  join(seq: number, now: number): void;
  /** A local input was sent with this seq (again, for a resend). */
  input(seq: number, input: I, now: number): void;
  /** A tick arrived with the server's state of the own player (its ack included). */
  reconcile(server: Readonly<S>, tick: number, now: number): void;
  /** The connection is up (true) or down and reconnecting (false); called at any rate. */
  link(up: boolean, now: number): void;
  /** Advances what is drawn to local time now (ms). */
  frame(now: number): void;
}

export interface PredictionStats {
  /** Estimated ticks from sending an input to the tick that applies it. */
  leadTicks: number;
  /** Lead samples taken (inputs whose first acknowledging tick was seen). */
  leadSamples: number;
  /** Unacknowledged inputs in the buffer. */
  pending: number;
  /** Inputs dropped because the buffer was full. */
  overflow: number;
  /** |P after - P before| at the last reconcile: the prediction error, in world units. */
  lastError: number;
  maxError: number;
  /** Reconciles that moved P by more than half a unit, and those that snapped what is drawn. */
  corrections: number;
  snaps: number;
  /** Frames in which the prediction was held because no tick came for too long. */
  stalledFrames: number;
  /** |drawn - P| after the last frame. */
  displayError: number;
}

export interface ReconcilerOptions {
  /** Pending inputs kept (default 64); the oldest is dropped beyond it. */
  capacity?: number;
  /** Lead (ticks) before any sample, e.g. from the measured RTT (default 1). */
  initialLead?: () => number;
  /** Ticks P may run past the newest tick beyond the lead before it stops (default 4). */
  maxAheadTicks?: number;
  /** While the link is down, ticks P may run on from when it went down (default 60: three seconds at 20 Hz). */
  maxOfflineTicks?: number;
  /** Time constant of the smoothing of small corrections, ms (default 50). */
  tauMs?: number;
  /** Larger differences between drawn and predicted snap at once (world units; default 40). */
  snapDistance?: () => number;
  /**
   * The most ticks a lead sample may show beyond the clock's lateness, e.g. the measured RTT plus a margin
   * (default: no bound). An ack that covers an input later than that was held back after the input was applied
   * (acks mean applied and stored; while the input stream elects a leader they stop for seconds): its sample
   * says nothing about the path and is left out.
   */
  maxLead?: () => number;
}

const LEAD_SAMPLES = 9;

export class Reconciler<S, I> implements Predictor<S, I> {
  readonly stats: PredictionStats = {
    leadTicks: 1,
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

  private readonly capacity: number;
  private readonly initialLead: () => number;
  private readonly maxAhead: number;
  private readonly maxOffline: number;
  private readonly tauMs: number;
  private readonly snapDistance: () => number;
  private readonly maxLead: () => number;

  // The server's state of the own player at baseTick.
  private readonly base: S;
  private baseTick = 0;
  private _ready = false;
  // Scratch states for the replay.
  private readonly sim: S;
  private readonly next: S;

  // Pending inputs, a ring sorted by seq: slot i holds seq[i], ... .
  private readonly pSeq: Float64Array;
  private readonly pSent: Float64Array;
  private readonly pEff: Float64Array; // scratch: predicted tick of effect
  private readonly pJoin: Uint8Array;
  private readonly pResent: Uint8Array;
  private readonly pInput: (I | undefined)[];
  private head = 0;
  private count = 0;

  // The latest input sent, for an ack that goes down (failover to an older state).
  private lastSeq = 0;
  private lastInput: I | undefined = undefined;

  // Lead estimation.
  // Lead samples: the tick that first applied an input, its send time and the clock generation then.
  private readonly sTick = new Float64Array(LEAD_SAMPLES);
  private readonly sSent = new Float64Array(LEAD_SAMPLES);
  private readonly sGen = new Float64Array(LEAD_SAMPLES);
  private readonly sNo = new Float64Array(LEAD_SAMPLES); // a sample's number: larger is newer
  private readonly sorted = new Float64Array(LEAD_SAMPLES); // scratch: lower bounds of the valid samples
  private readonly ages = new Float64Array(LEAD_SAMPLES); // scratch: their numbers
  private nSamples = 0;
  private sampleHead = 0;
  private nValid = 0;
  private leadEstimate = 1;
  private prevTick = Number.NaN;
  private prevAck = 0;
  // The clock generation of the previous tick, and when the first tick of the current generation arrived.
  private prevGen = Number.NaN;
  private genStart = Number.NaN;

  // Prediction output (predict) and what is drawn (frame).
  private px = 0;
  private py = 0;
  private vx = 0;
  private vy = 0;
  private stalled = false;
  private dx = 0;
  private dy = 0;
  private shown = false;
  private lastFrame = Number.NaN;
  // When the link went down (NaN: up), and whether it is up again (cleared at the next tick).
  private offlineSince = Number.NaN;
  private linkUp = true;

  constructor(
    private readonly rules: PredictionRules<S, I>,
    private readonly clock: TickTimeline,
    opts: ReconcilerOptions = {},
  ) {
    this.capacity = Math.max(2, opts.capacity ?? 64);
    this.initialLead = opts.initialLead ?? (() => 1);
    this.maxAhead = opts.maxAheadTicks ?? 4;
    this.maxOffline = opts.maxOfflineTicks ?? 60;
    this.tauMs = opts.tauMs ?? 50;
    this.snapDistance = opts.snapDistance ?? (() => 40);
    this.maxLead = opts.maxLead ?? (() => Infinity);
    this.base = rules.create();
    this.sim = rules.create();
    this.next = rules.create();
    this.pSeq = new Float64Array(this.capacity);
    this.pSent = new Float64Array(this.capacity);
    this.pEff = new Float64Array(this.capacity);
    this.pJoin = new Uint8Array(this.capacity);
    this.pResent = new Uint8Array(this.capacity);
    this.pInput = new Array<I | undefined>(this.capacity).fill(undefined);
  }

  get ready(): boolean {
    return this._ready;
  }

  get x(): number {
    return this.dx;
  }

  get y(): number {
    return this.dy;
  }

  /** The predicted position P at the last frame or reconcile (tests, net graph). */
  get predictedX(): number {
    return this.px;
  }

  get predictedY(): number {
    return this.py;
  }

  /** The tick of the server state in use. */
  get tick(): number {
    return this.baseTick;
  }

  /** The estimated lead in ticks. */
  lead(): number {
    if (this.nValid === 0) {
      const l = this.initialLead();
      return Number.isFinite(l) && l >= 0 ? l : 1;
    }
    return this.leadEstimate;
  }

  /** The owner's tick at local time t: the clock's mapping less its lag (after a pause the mapping runs ahead). */
  private ownerTickAt(t: number): number {
    return this.clock.tickAt(t) - this.clock.lagTicks;
  }

  /** How late ticks usually arrive behind ownerTickAt, in ticks. */
  private lateTicks(): number {
    return Math.max(0, this.clock.lateTicks - this.clock.lagTicks);
  }

  /** Seqs of the pending inputs, oldest first (allocates: for tests). */
  pendingSeqs(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.pSeq[this.slot(i)] as number);
    return out;
  }

  clear(): void {
    this._ready = false;
    this.shown = false;
    this.head = 0;
    this.count = 0;
    this.pInput.fill(undefined);
    this.lastSeq = 0;
    this.lastInput = undefined;
    this.prevTick = Number.NaN;
    this.prevAck = 0;
    this.prevGen = Number.NaN;
    this.genStart = Number.NaN;
    this.lastFrame = Number.NaN;
    this.offlineSince = Number.NaN;
    this.linkUp = true;
    this.stats.pending = 0;
  }

  link(up: boolean, now: number): void {
    this.linkUp = up;
    if (!up && Number.isNaN(this.offlineSince)) this.offlineSince = now;
  }

  reset(server: Readonly<S>, tick: number, now: number): void {
    this.rules.copy(this.base, server);
    this.baseTick = tick;
    this._ready = true;
    this.dropAcked(this.rules.ack(server));
    this.prevTick = tick;
    this.prevAck = this.rules.ack(server);
    this.noteGeneration(now);
    this.predict(now);
    this.dx = this.px;
    this.dy = this.py;
    this.shown = true;
    this.lastFrame = now;
  }

  join(seq: number, now: number): void {
    this.add(seq, true, undefined, now);
  }

  input(seq: number, input: I, now: number): void {
    if (seq >= this.lastSeq) {
      this.lastSeq = seq;
      this.lastInput = input;
    }
    this.add(seq, false, input, now);
  }

  reconcile(server: Readonly<S>, tick: number, now: number): void {
    if (!this._ready) {
      this.reset(server, tick, now);
      return;
    }
    const ack = this.rules.ack(server);
    this.predict(now);
    const bx = this.px;
    const by = this.py;

    // Lead samples: inputs first covered by this tick, when the tick before it was seen uncovering them, on the
    // same clock line. A new owner numbers its ticks on from the tick it restored, so tick = prevTick + 1 across
    // an owner change too; an input sent before the line's first tick waited for an owner (or for the new line)
    // and its wait is no lead.
    const sameLine = this.prevGen === this.clock.generation;
    this.noteGeneration(now);
    if (tick === this.prevTick + 1 && sameLine) {
      const bound = this.maxLead() + this.lateTicks();
      for (let i = 0; i < this.count; i++) {
        const k = this.slot(i);
        const seq = this.pSeq[k] as number;
        if (seq > ack) break;
        const sent = this.pSent[k] as number;
        if (seq <= this.prevAck || this.pResent[k] === 1 || !(sent >= this.genStart)) continue;
        if (tick - 1 - this.ownerTickAt(sent) > bound) continue; // an ack held back after the input was applied
        this.addSample(tick, sent);
      }
    }
    this.updateLead();
    this.prevTick = tick;
    this.prevAck = ack;
    // Ticks again after a reconnect: back to the online limit (not before: P would jump back meanwhile).
    if (this.linkUp) this.offlineSince = Number.NaN;

    this.rules.copy(this.base, server);
    this.baseTick = tick;
    this.dropAcked(ack);
    // The ack went below the latest input (a new owner restored an older state): it is pending again (the
    // client resends it), or the replay would run on the old keys until the server catches up.
    if (ack < this.lastSeq && this.lastInput !== undefined && !this.has(this.lastSeq)) {
      this.add(this.lastSeq, false, this.lastInput, now);
      this.markResent(this.lastSeq);
    }

    this.predict(now);
    const err = Math.hypot(this.px - bx, this.py - by);
    this.stats.lastError = err;
    if (err > this.stats.maxError) this.stats.maxError = err;
    if (err > 0.5) this.stats.corrections++;
  }

  frame(now: number): void {
    if (!this._ready) return;
    this.predict(now);
    if (this.stalled) this.stats.stalledFrames++;
    if (!this.shown || Number.isNaN(this.lastFrame)) {
      this.dx = this.px;
      this.dy = this.py;
      this.shown = true;
      this.lastFrame = now;
      this.stats.displayError = 0;
      return;
    }
    let dt = now - this.lastFrame;
    dt = dt < 0 ? 0 : dt > 100 ? 100 : dt;
    this.lastFrame = now;
    // Move with the tick in progress, then close part of the gap to P.
    const f = dt / this.clock.tickMs;
    const b = this.rules.bounds();
    this.dx = clamp(this.dx + this.vx * f, 0, b.width);
    this.dy = clamp(this.dy + this.vy * f, 0, b.height);
    const ex = this.px - this.dx;
    const ey = this.py - this.dy;
    if (Math.hypot(ex, ey) > this.snapDistance()) {
      this.dx = this.px;
      this.dy = this.py;
      this.stats.snaps++;
    } else {
      const k = 1 - Math.exp(-dt / this.tauMs);
      this.dx += ex * k;
      this.dy += ey * k;
    }
    this.stats.displayError = Math.hypot(this.px - this.dx, this.py - this.dy);
  }

  // -------------------------------------------------------------------------

  /** Computes P (px, py), the velocity of the tick in progress (vx, vy per tick) and stalled, for local time now. */
  private predict(now: number): void {
    const rules = this.rules;
    const lead = this.lead();
    this.stats.leadTicks = lead;
    let ahead = this.ownerTickAt(now) + lead - this.baseTick;
    if (!(ahead > 0)) ahead = 0; // NaN (no clock yet) or a tick that came early
    // Ticks usually this late are not missing yet.
    let cap = Math.floor(lead + this.lateTicks()) + this.maxAhead;
    if (!Number.isNaN(this.offlineSince)) cap += Math.min(this.maxOffline, Math.max(0, (now - this.offlineSince) / this.clock.tickMs));
    this.stalled = ahead > cap;
    if (this.stalled) ahead = cap;
    const n = Math.floor(ahead);
    const frac = ahead - n;

    for (let i = 0; i < this.count; i++) {
      const k = this.slot(i);
      const eff = Math.ceil(this.ownerTickAt(this.pSent[k] as number) + lead);
      // Late (should have been applied already) or unknown: the next tick.
      this.pEff[k] = eff > this.baseTick ? eff : this.baseTick + 1;
    }
    const sim = rules.copy(this.sim, this.base);
    let i = 0;
    for (let j = 1; j <= n; j++) {
      const t = this.baseTick + j;
      i = this.applyUpTo(sim, i, t);
      rules.step(sim);
    }
    const x0 = rules.x(sim);
    const y0 = rules.y(sim);
    if (this.stalled) {
      this.vx = 0;
      this.vy = 0;
    } else {
      const next = rules.copy(this.next, sim);
      this.applyUpTo(next, i, Infinity);
      rules.step(next);
      this.vx = rules.x(next) - x0;
      this.vy = rules.y(next) - y0;
    }
    this.px = x0 + this.vx * frac;
    this.py = y0 + this.vy * frac;
  }

  /** Applies pending inputs from index i on whose tick of effect is at most t; returns the next index. */
  private applyUpTo(s: S, i: number, t: number): number {
    for (; i < this.count; i++) {
      const k = this.slot(i);
      if ((this.pEff[k] as number) > t) break;
      const seq = this.pSeq[k] as number;
      if (this.pJoin[k] === 1) this.rules.join(s, seq);
      else this.rules.input(s, seq, this.pInput[k] as I);
    }
    return i;
  }

  /** Records the clock generation of the tick being taken, and when its line began (the first tick on it). */
  private noteGeneration(now: number): void {
    const gen = this.clock.generation;
    if (gen !== this.prevGen) {
      this.prevGen = gen;
      this.genStart = now;
    }
  }

  private slot(i: number): number {
    return (this.head + i) % this.capacity;
  }

  private has(seq: number): boolean {
    for (let i = 0; i < this.count; i++) if (this.pSeq[this.slot(i)] === seq) return true;
    return false;
  }

  private markResent(seq: number): void {
    for (let i = 0; i < this.count; i++) {
      const k = this.slot(i);
      if (this.pSeq[k] === seq) this.pResent[k] = 1;
    }
  }

  private add(seq: number, join: boolean, input: I | undefined, now: number): void {
    if (this._ready && seq <= this.rules.ack(this.base)) return; // the server has it already
    // A resend of a pending input: it goes out again now; its first send says nothing about the lead.
    for (let i = 0; i < this.count; i++) {
      const k = this.slot(i);
      if (this.pSeq[k] === seq) {
        this.pSent[k] = now;
        this.pResent[k] = 1;
        return;
      }
    }
    // Seqs only grow: a lower one than the newest pending is stale.
    if (this.count > 0 && seq < (this.pSeq[this.slot(this.count - 1)] as number)) return;
    if (this.count === this.capacity) {
      this.pInput[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
      this.stats.overflow++;
    }
    const k = this.slot(this.count);
    this.pSeq[k] = seq;
    this.pSent[k] = now;
    this.pJoin[k] = join ? 1 : 0;
    this.pResent[k] = 0;
    this.pInput[k] = input;
    this.count++;
    this.stats.pending = this.count;
  }

  private dropAcked(ack: number): void {
    while (this.count > 0 && (this.pSeq[this.head] as number) <= ack) {
      this.pInput[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
    }
    this.stats.pending = this.count;
  }

  private addSample(tick: number, sentAt: number): void {
    this.sTick[this.sampleHead] = tick;
    this.sSent[this.sampleHead] = sentAt;
    this.sGen[this.sampleHead] = this.clock.generation;
    this.sNo[this.sampleHead] = this.stats.leadSamples;
    this.sampleHead = (this.sampleHead + 1) % LEAD_SAMPLES;
    if (this.nSamples < LEAD_SAMPLES) this.nSamples++;
    this.stats.leadSamples++;
  }

  /**
   * The lead from the samples, against the clock's current line (which moves):
   * an input sent at tick position x = tickAt(sent) and first applied at tick
   * t puts the lead in (t - 1 - x, t - x]. The lead is the middle of the
   * stretch that most of those intervals share (all of them on a steady
   * network, where it converges on the exact value after a few inputs at
   * different tick phases; most of them when some inputs were held up, so an
   * outlier does not move it). Between equally shared stretches the one with
   * the newest sample wins (the path changed). Samples from before a
   * re-anchoring (a new epoch's numbering) are left out.
   */
  private updateLead(): void {
    const gen = this.clock.generation;
    const lows = this.sorted;
    const ages = this.ages;
    let n = 0;
    for (let i = 0; i < this.nSamples; i++) {
      if (this.sGen[i] !== gen) continue;
      const l = (this.sTick[i] as number) - 1 - this.ownerTickAt(this.sSent[i] as number);
      if (!Number.isFinite(l)) continue;
      lows[n] = l;
      ages[n] = this.sNo[i] as number;
      n++;
    }
    this.nValid = n;
    if (n === 0) return;
    // The most shared point lies just above one of the lower bounds.
    let best = -1;
    let bestCount = 0;
    let bestNewest = -1;
    let bestHi = 0;
    for (let j = 0; j < n; j++) {
      const c = lows[j] as number;
      let count = 0;
      let newest = -1;
      let hi = Infinity;
      for (let i = 0; i < n; i++) {
        const l = lows[i] as number;
        if (l <= c && c < l + 1) {
          count++;
          if ((ages[i] as number) > newest) newest = ages[i] as number;
          if (l + 1 < hi) hi = l + 1;
        }
      }
      if (count > bestCount || (count === bestCount && newest > bestNewest)) {
        best = c;
        bestCount = count;
        bestNewest = newest;
        bestHi = hi;
      }
    }
    const m = (best + bestHi) / 2;
    this.leadEstimate = m < 0 ? 0 : m;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
