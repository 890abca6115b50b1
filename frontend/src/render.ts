// Canvas renderer shared by the games: a rectangular world scaled to fit the
// canvas, players as circles (your player red, others blue), names above,
// offline players faded. A game draws its own things under and over the
// players (layers). Draws with fillRect, arc (batched into one path per colour)
// and names rendered once with fillText into cached bitmaps; allocates nothing
// per frame beyond what the canvas API does.

import type { RenderPlayer } from './snapshots';

export const COLORS = {
  background: '#0e1116',
  arena: '#1a1f27',
  grid: '#232a34',
  border: '#3c4656',
  me: 'rgb(229, 57, 53)',
  other: 'rgb(30, 136, 229)',
  name: '#d7dde6',
} as const;

/** Player radius in arena units, and its minimum on screen in CSS pixels. */
export const PLAYER_RADIUS = 12;
export const MIN_RADIUS_PX = 5;
const OFFLINE_ALPHA = 0.35;
const MARGIN_PX = 24;
const GRID_UNITS = 100;
const LABEL_FONT = '12px system-ui, sans-serif';
const LABEL_HEIGHT = 16;
const MAX_LABELS = 1024;

export interface View {
  /** CSS pixels per arena unit. */
  scale: number;
  /** CSS pixel offset of the arena's origin. */
  ox: number;
  oy: number;
  /** Device pixels per CSS pixel. */
  dpr: number;
}

/** Uniform scale and centring of a width x height arena in a cssW x cssH box. */
export function fitArena(cssW: number, cssH: number, width: number, height: number, margin = MARGIN_PX): View {
  const aw = Math.max(1, cssW - 2 * margin);
  const ah = Math.max(1, cssH - 2 * margin);
  const scale = Math.max(1e-6, Math.min(aw / width, ah / height));
  return { scale, ox: (cssW - width * scale) / 2, oy: (cssH - height * scale) / 2, dpr: 1 };
}

/**
 * A game's drawing around the players: called with the context set to CSS
 * pixels and the current view (world x -> ox + x * scale).
 */
export type Layer = (ctx: CanvasRenderingContext2D, view: Readonly<View>) => void;

export interface Layers {
  under?: Layer;
  over?: Layer;
}

export class Renderer {
  readonly view: View = { scale: 1, ox: 0, oy: 0, dpr: 1 };
  private readonly ctx: CanvasRenderingContext2D;
  private cssW = 0;
  private cssH = 0;
  private arenaW = 0;
  private arenaH = 0;
  private readonly labels = new Map<string, Label>();

  constructor(private readonly canvas: HTMLCanvasElement) {
    const ctx = canvas.getContext('2d', { alpha: false });
    if (ctx === null) throw new Error('2d canvas not supported');
    this.ctx = ctx;
  }

  /** Matches the backing store to the element size; cheap when nothing changed. */
  private fit(width: number, height: number): void {
    const dpr = globalThis.devicePixelRatio || 1;
    const cssW = this.canvas.clientWidth;
    const cssH = this.canvas.clientHeight;
    if (cssW === this.cssW && cssH === this.cssH && dpr === this.view.dpr && width === this.arenaW && height === this.arenaH) {
      return;
    }
    this.cssW = cssW;
    this.cssH = cssH;
    this.arenaW = width;
    this.arenaH = height;
    const w = Math.max(1, Math.round(cssW * dpr));
    const h = Math.max(1, Math.round(cssH * dpr));
    if (this.canvas.width !== w) this.canvas.width = w;
    if (this.canvas.height !== h) this.canvas.height = h;
    const v = fitArena(cssW, cssH, width, height);
    this.view.scale = v.scale;
    this.view.ox = v.ox;
    this.view.oy = v.oy;
    this.view.dpr = dpr;
  }

  /** The canvas context, for overlays drawn after draw() (the net graph). */
  get context(): CanvasRenderingContext2D {
    return this.ctx;
  }

  /** The canvas's CSS height at the last draw. */
  get cssHeight(): number {
    return this.cssH;
  }

  /** Arena coordinates -> canvas backing-store pixels (for tests and tools). */
  toCanvas(x: number, y: number): { x: number; y: number } {
    const v = this.view;
    return { x: (v.ox + x * v.scale) * v.dpr, y: (v.oy + y * v.scale) * v.dpr };
  }

  /** A point of the page (a pointer event's clientX/Y) -> world coordinates, clamped to the world. */
  fromClient(clientX: number, clientY: number): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    const v = this.view;
    const x = (clientX - r.left - v.ox) / v.scale;
    const y = (clientY - r.top - v.oy) / v.scale;
    return { x: Math.min(Math.max(x, 0), this.arenaW), y: Math.min(Math.max(y, 0), this.arenaH) };
  }

  /**
   * Draws one frame. players[0..count) are drawn; the one whose id is me is
   * red and on top. width/height is the arena size (0 before the first tick:
   * only the background is drawn).
   */
  draw(players: readonly RenderPlayer[], count: number, me: string, width: number, height: number, layers: Layers = {}): void {
    const ctx = this.ctx;
    const hasArena = width > 0 && height > 0;
    this.fit(hasArena ? width : 1000, hasArena ? height : 1000);
    const { scale, ox, oy, dpr } = this.view;

    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalAlpha = 1;
    ctx.fillStyle = COLORS.background;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!hasArena) return;

    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const aw = width * scale;
    const ah = height * scale;
    ctx.fillStyle = COLORS.border;
    ctx.fillRect(ox - 2, oy - 2, aw + 4, ah + 4);
    ctx.fillStyle = COLORS.arena;
    ctx.fillRect(ox, oy, aw, ah);
    ctx.fillStyle = COLORS.grid;
    for (let gx = GRID_UNITS; gx < width; gx += GRID_UNITS) ctx.fillRect(ox + gx * scale, oy, 1, ah);
    for (let gy = GRID_UNITS; gy < height; gy += GRID_UNITS) ctx.fillRect(ox, oy + gy * scale, aw, 1);
    if (layers.under !== undefined) {
      layers.under(ctx, this.view);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.globalAlpha = 1;
    }

    const r = Math.max(MIN_RADIUS_PX, PLAYER_RADIUS * scale);
    let meIndex = -1;
    for (let i = 0; i < count; i++) {
      if ((players[i] as RenderPlayer).id === me) {
        meIndex = i;
        break;
      }
    }
    // Circles batched into one path per colour and opacity: offline others,
    // online others, then you on top.
    this.circles(players, count, meIndex, false, r, COLORS.other, OFFLINE_ALPHA);
    this.circles(players, count, meIndex, true, r, COLORS.other, 1);
    if (meIndex >= 0) {
      const p = players[meIndex] as RenderPlayer;
      ctx.globalAlpha = p.online ? 1 : OFFLINE_ALPHA;
      ctx.fillStyle = COLORS.me;
      ctx.beginPath();
      ctx.arc(ox + p.x * scale, oy + p.y * scale, r, 0, Math.PI * 2);
      ctx.fill();
    }
    // Names above, from cached bitmaps (much cheaper than fillText per frame).
    for (let i = 0; i < count; i++) {
      const p = players[i] as RenderPlayer;
      if (p.name === '') continue;
      const label = this.label(p.name);
      ctx.globalAlpha = p.online ? 1 : OFFLINE_ALPHA;
      const cx = ox + p.x * scale;
      const cy = oy + p.y * scale;
      ctx.drawImage(label.canvas, cx - label.w / 2, cy - r - 3 - label.h, label.w, label.h);
    }
    ctx.globalAlpha = 1;
    if (layers.over !== undefined) {
      layers.over(ctx, this.view);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.globalAlpha = 1;
    }
  }

  private circles(players: readonly RenderPlayer[], count: number, skip: number, online: boolean, r: number, color: string, alpha: number): void {
    const ctx = this.ctx;
    const { scale, ox, oy } = this.view;
    ctx.globalAlpha = alpha;
    ctx.fillStyle = color;
    ctx.beginPath();
    let any = false;
    for (let i = 0; i < count; i++) {
      const p = players[i] as RenderPlayer;
      if (i === skip || p.online !== online) continue;
      const cx = ox + p.x * scale;
      const cy = oy + p.y * scale;
      ctx.moveTo(cx + r, cy);
      ctx.arc(cx, cy, r, 0, Math.PI * 2);
      any = true;
    }
    if (any) ctx.fill();
  }

  /** A name rendered once into a small canvas at the current device pixel ratio. */
  private label(name: string): Label {
    const dpr = this.view.dpr;
    let l = this.labels.get(name);
    if (l !== undefined && l.dpr === dpr) return l;
    if (this.labels.size >= MAX_LABELS) this.labels.clear();
    const doc = this.canvas.ownerDocument;
    const c = doc.createElement('canvas');
    const m = c.getContext('2d') as CanvasRenderingContext2D;
    m.font = LABEL_FONT;
    const w = Math.ceil(m.measureText(name).width) + 2;
    const h = LABEL_HEIGHT;
    c.width = Math.max(1, Math.ceil(w * dpr));
    c.height = Math.ceil(h * dpr);
    m.scale(dpr, dpr);
    m.font = LABEL_FONT;
    m.textAlign = 'center';
    m.textBaseline = 'middle';
    m.fillStyle = COLORS.name;
    m.fillText(name, w / 2, h / 2);
    l = { canvas: c, w, h, dpr };
    this.labels.set(name, l);
    return l;
  }
}

interface Label {
  canvas: HTMLCanvasElement;
  /** Size in CSS pixels. */
  w: number;
  h: number;
  dpr: number;
}
