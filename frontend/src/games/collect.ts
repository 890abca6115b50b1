// Collect (games/collect): click or drag on the field to walk there; touch a
// pickup to score its value; each round lasts round_ticks ticks, after which
// scores start again from zero. The input is {"x":int,"y":int}, the target,
// sent as input.data; the state is the globals width, height, round and ends,
// per player x, y, tx, ty, score and last, and the object list pickups with
// x, y and value.

import type { Params, TickMessage, TickObject } from '../protocol';
import type { View } from '../render';
import { worldOf, type GameInstance, type GameModule, type Stage } from './registry';

export const PICKUP_COLORS = ['#ffd54f', '#ffb300', '#ff6f00'] as const;

/** A target point of the field: the payload of an input. */
export interface Target {
  x: number;
  y: number;
}

/**
 * Mirrors collect's DecodeInput (games/collect): exactly the members x and y,
 * integers inside the field. The page sends only payloads that pass.
 */
export function validTarget(v: unknown, width: number, height: number): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length !== 2 || !('x' in o) || !('y' in o)) return false;
  const ok = (n: unknown, hi: number) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= hi;
  return ok(o['x'], width) && ok(o['y'], height);
}

/** The payload of a target, as collect's DecodeInput wants it: integers inside the field. */
export function targetPayload(t: Target, width: number, height: number): { x: number; y: number } {
  const clamp = (v: number, hi: number) => Math.min(Math.max(Math.round(v), 0), Math.floor(hi));
  return { x: clamp(t.x, width), y: clamp(t.y, height) };
}

export interface Score {
  id: string;
  name: string;
  score: number;
  last: number;
  online: boolean;
}

/** The players by score (highest first, then name, then id). */
export function scores(t: TickMessage): Score[] {
  return t.players
    .map((p) => ({ id: p.id, name: p.name, score: p.f['score'] ?? 0, last: p.f['last'] ?? 0, online: p.online }))
    .sort((a, b) => b.score - a.score || a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1));
}

/** Seconds left in the round at tick seq, from the tick's ends and the tick rate. */
export function secondsLeft(t: TickMessage, tickRate: number): number {
  const ends = t.g['ends'] ?? t.seq;
  return Math.max(0, (ends - t.seq) / tickRate);
}

/** Pointer moves while dragging send at most one target per this many ms (the server allows 30 messages/s). */
const DRAG_INTERVAL_MS = 100;

export const collectModule: GameModule = {
  name: 'collect',
  title: 'Collect',
  help: 'Click or drag on the field to walk there; touch the gold pickups to score.',
  create(params: Params): GameInstance {
    const tickRate = params['tick_rate'] ?? 20;
    const radius = params['radius'] ?? 24;
    let latest: TickMessage | null = null;
    let me = '';
    let target: Target | null = null;
    let hudShown = '';
    const pickups = (): TickObject[] => latest?.objects['pickups'] ?? [];

    const under = (ctx: CanvasRenderingContext2D, v: Readonly<View>) => {
      for (const o of pickups()) {
        const value = Math.min(Math.max(o.f['value'] ?? 1, 1), 3);
        ctx.fillStyle = PICKUP_COLORS[value - 1] as string;
        ctx.beginPath();
        ctx.arc(v.ox + (o.f['x'] ?? 0) * v.scale, v.oy + (o.f['y'] ?? 0) * v.scale, Math.max(4, (6 + 2 * value) * v.scale), 0, Math.PI * 2);
        ctx.fill();
      }
    };
    const over = (ctx: CanvasRenderingContext2D, v: Readonly<View>) => {
      const p = latest?.players.find((q) => q.id === me);
      if (p === undefined) return;
      const tx = p.f['tx'] ?? 0;
      const ty = p.f['ty'] ?? 0;
      if (tx === p.f['x'] && ty === p.f['y']) return;
      ctx.strokeStyle = '#e57373';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(v.ox + tx * v.scale, v.oy + ty * v.scale, Math.max(6, radius * v.scale * 0.5), 0, Math.PI * 2);
      ctx.stroke();
    };

    const renderHud = (stage: Stage) => {
      if (latest === null) return;
      const list = scores(latest);
      const key = `${latest.g['round']}|${Math.ceil(secondsLeft(latest, tickRate))}|${me}|${list.map((s) => `${s.id}:${s.name}:${s.score}:${s.last}:${s.online}`).join(',')}`;
      if (key === hudShown) return;
      hudShown = key;
      const doc = stage.hud.ownerDocument;
      const round = doc.createElement('div');
      round.dataset['testid'] = 'collect-round';
      round.textContent = `Round ${latest.g['round'] ?? 1} — ${Math.ceil(secondsLeft(latest, tickRate))} s left`;
      const ol = doc.createElement('ol');
      ol.dataset['testid'] = 'collect-scores';
      for (const s of list.slice(0, 10)) {
        const li = doc.createElement('li');
        li.dataset['player'] = s.id;
        if (s.id === me) li.className = 'me';
        if (!s.online) li.classList.add('away');
        li.textContent = `${s.name || s.id}: ${s.score}${s.last > 0 ? ` (last round ${s.last})` : ''}`;
        ol.append(li);
      }
      stage.hud.replaceChildren(round, ol);
    };

    return {
      onTick(t, id) {
        latest = t;
        me = id;
      },
      draw(stage, f) {
        const w = worldOf(f.latest);
        stage.renderer.draw(f.players, f.count, f.me, w?.width ?? 0, w?.height ?? 0, { under, over });
        renderHud(stage);
      },
      attach(input, stage, send) {
        let dragging = false;
        let lastSent = -Infinity;
        let last = '';
        const aim = (ev: PointerEvent, force: boolean) => {
          const w = worldOf(latest);
          if (w === null) return;
          const now = performance.now();
          if (!force && now - lastSent < DRAG_INTERVAL_MS) return;
          const t = targetPayload(stage.renderer.fromClient(ev.clientX, ev.clientY), w.width, w.height);
          const k = `${t.x},${t.y}`;
          if (k === last) return;
          last = k;
          lastSent = now;
          target = t;
          send({ data: t });
        };
        const down = (ev: PointerEvent) => {
          if (ev.button !== 0) return;
          dragging = true;
          aim(ev, true);
          ev.preventDefault();
        };
        const move = (ev: PointerEvent) => {
          if (dragging) aim(ev, false);
        };
        const up = (ev: PointerEvent) => {
          if (dragging) aim(ev, true);
          dragging = false;
        };
        input.canvas.addEventListener('pointerdown', down);
        input.canvas.addEventListener('pointermove', move);
        input.window.addEventListener('pointerup', up);
        return () => {
          input.canvas.removeEventListener('pointerdown', down);
          input.canvas.removeEventListener('pointermove', move);
          input.window.removeEventListener('pointerup', up);
        };
      },
      current() {
        return null; // a new connection stands still until the next click
      },
      moveSpeed() {
        return params['speed'] ?? Infinity; // along a straight line: at most that on each axis
      },
      debug() {
        const mine = latest?.players.find((p) => p.id === me);
        return {
          round: latest?.g['round'] ?? 0,
          ends: latest?.g['ends'] ?? 0,
          pickups: pickups().map((o) => ({ id: o.id, x: o.f['x'] ?? 0, y: o.f['y'] ?? 0, value: o.f['value'] ?? 0 })),
          score: mine?.f['score'] ?? 0,
          target: target === null ? null : { ...target },
          scores: latest === null ? [] : scores(latest),
        };
      },
    };
  },
};
