// The net graph: a small live panel drawn on the game canvas with the
// connection's numbers (RTT, jitter, tick arrival gaps, prediction error,
// bytes per second, protocol version, reconnects, render delay, lead) and two
// bar charts over the last ticks: arrival gaps and prediction errors.
// Toggled with the N key or shown from the start with ?netgraph=1.
//
// NetStats collects (fixed-size rings, no allocation); NetGraph draws. The
// text lines are formatted four times a second and drawn from those strings
// every frame, so a frame allocates nothing.

/** Ticks shown in the charts. */
export const GRAPH_TICKS = 120;

/** Fixed-memory statistics for the net graph. */
export class NetStats {
  /** Arrival gap before each of the last ticks (ms), and the prediction error at it (world units). */
  readonly gaps = new Float32Array(GRAPH_TICKS);
  readonly errors = new Float32Array(GRAPH_TICKS);
  /** Next slot in gaps/errors, and how many are filled. */
  head = 0;
  filled = 0;

  rttMs: number | null = null;
  jitterMs = 0;
  protocol = 0;
  reconnects = 0;
  delayTicks = 0;
  leadTicks = 0;
  tickMs = 50;
  predicting = false;

  // Bytes received, in 100 ms buckets over the last second.
  private readonly buckets = new Float64Array(10);
  private bucketAt = Number.NaN; // start time of the current bucket
  private bucket = 0;

  /** Records an accepted tick: its arrival gap (ms; NaN for the first of an epoch) and the prediction error. */
  pushTick(gapMs: number, error: number): void {
    this.gaps[this.head] = Number.isFinite(gapMs) ? gapMs : 0;
    this.errors[this.head] = Number.isFinite(error) ? error : 0;
    this.head = (this.head + 1) % GRAPH_TICKS;
    if (this.filled < GRAPH_TICKS) this.filled++;
  }

  /** Records a received frame of n bytes at local time now (ms). */
  addBytes(n: number, now: number): void {
    this.roll(now);
    this.buckets[this.bucket] = (this.buckets[this.bucket] as number) + n;
  }

  /** Bytes received during the last second (up to now). */
  bytesPerSecond(now: number): number {
    this.roll(now);
    let sum = 0;
    for (let i = 0; i < this.buckets.length; i++) sum += this.buckets[i] as number;
    return sum;
  }

  /** The i-th newest value of a ring (0 = newest). */
  newest(ring: Float32Array, i: number): number {
    return ring[(this.head - 1 - i + 2 * GRAPH_TICKS) % GRAPH_TICKS] as number;
  }

  /** Largest value of a ring over the filled part. */
  max(ring: Float32Array): number {
    let m = 0;
    for (let i = 0; i < this.filled; i++) m = Math.max(m, this.newest(ring, i));
    return m;
  }

  private roll(now: number): void {
    if (Number.isNaN(this.bucketAt)) {
      this.bucketAt = now;
      return;
    }
    let steps = Math.floor((now - this.bucketAt) / 100);
    if (steps <= 0) return;
    if (steps > this.buckets.length) steps = this.buckets.length;
    for (let i = 0; i < steps; i++) {
      this.bucket = (this.bucket + 1) % this.buckets.length;
      this.buckets[this.bucket] = 0;
    }
    this.bucketAt += Math.floor((now - this.bucketAt) / 100) * 100;
  }
}

/** UTF-8 length of a string without encoding it (for bytes per second). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const PANEL_W = 270;
const PANEL_H = 150;
const MARGIN = 12;
const CHART_H = 34;
const FONT = '11px ui-monospace, monospace';
// No red: the e2e probe finds the own avatar by its red pixels.
const COLORS = { panel: 'rgba(0, 0, 0, 0.72)', text: '#d7dde6', gap: '#4dd0e1', late: '#ffd54f', error: '#ffb74d', line: '#607080' } as const;

/** Formats the text lines of the panel (allocates: called a few times a second). */
export function netGraphLines(s: NetStats, now: number): [string, string, string, string] {
  const rtt = s.rttMs === null ? '—' : `${Math.round(s.rttMs)} ms`;
  const lastGap = s.filled > 0 ? s.newest(s.gaps, 0) : 0;
  const kb = s.bytesPerSecond(now) / 1000;
  const err = s.filled > 0 ? s.newest(s.errors, 0) : 0;
  return [
    `RTT ${rtt}  jitter ${s.jitterMs.toFixed(1)} ms  delay ${s.delayTicks.toFixed(2)} t`,
    `tick gap ${lastGap.toFixed(0)} ms  max ${s.max(s.gaps).toFixed(0)} ms`,
    s.predicting ? `pred err ${err.toFixed(1)} px  max ${s.max(s.errors).toFixed(1)}  lead ${s.leadTicks.toFixed(2)} t` : 'prediction off (?predict=0)',
    `in ${kb.toFixed(1)} kB/s  proto ${s.protocol || '—'}  reconnects ${s.reconnects}`,
  ];
}

export class NetGraph {
  visible: boolean;
  private lines: [string, string, string, string] = ['', '', '', ''];
  private linesAt = -Infinity;

  constructor(visible = false) {
    this.visible = visible;
  }

  toggle(): void {
    this.visible = !this.visible;
    this.linesAt = -Infinity;
  }

  /** Draws the panel in the canvas's bottom-left corner (CSS pixels cssW x cssH, device pixel ratio dpr). */
  draw(ctx: CanvasRenderingContext2D, cssH: number, dpr: number, s: NetStats, now: number): void {
    if (!this.visible) return;
    if (now - this.linesAt >= 250) {
      this.lines = netGraphLines(s, now);
      this.linesAt = now;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.globalAlpha = 1;
    const x0 = MARGIN;
    const y0 = cssH - MARGIN - PANEL_H;
    ctx.fillStyle = COLORS.panel;
    ctx.fillRect(x0, y0, PANEL_W, PANEL_H);
    ctx.font = FONT;
    ctx.textBaseline = 'top';
    ctx.textAlign = 'left';
    ctx.fillStyle = COLORS.text;
    for (let i = 0; i < this.lines.length; i++) ctx.fillText(this.lines[i] as string, x0 + 6, y0 + 5 + i * 14);

    // Charts, newest on the right: arrival gaps (0-150 ms, the tick period marked) and errors (0-40 units).
    const cw = PANEL_W - 12;
    const bw = cw / GRAPH_TICKS;
    const gy = y0 + 66;
    const ey = gy + CHART_H + 8;
    ctx.fillStyle = COLORS.line;
    ctx.fillRect(x0 + 6, gy + CHART_H - (s.tickMs / 150) * CHART_H, cw, 1);
    ctx.fillRect(x0 + 6, gy + CHART_H, cw, 1);
    ctx.fillRect(x0 + 6, ey + CHART_H, cw, 1);
    for (let i = 0; i < s.filled; i++) {
      const bx = x0 + 6 + cw - (i + 1) * bw;
      const g = s.newest(s.gaps, i);
      const gh = Math.min(1, g / 150) * CHART_H;
      ctx.fillStyle = g > 1.5 * s.tickMs ? COLORS.late : COLORS.gap;
      ctx.fillRect(bx, gy + CHART_H - gh, Math.max(1, bw - 0.5), gh);
      const e = s.newest(s.errors, i);
      if (e > 0.05) {
        const eh = Math.max(1, Math.min(1, e / 40) * CHART_H);
        ctx.fillStyle = COLORS.error;
        ctx.fillRect(bx, ey + CHART_H - eh, Math.max(1, bw - 0.5), eh);
      }
    }
  }
}
