// Keyboard input: WASD and the arrow keys map to a Keys object. The listener
// is called only when the held set of directions changes.

import { keysEqual, noKeys, type Keys } from './protocol';

type Dir = keyof Keys;

/** KeyboardEvent.code (layout independent) -> direction. */
const BY_CODE: Record<string, Dir> = {
  KeyW: 'up',
  ArrowUp: 'up',
  KeyS: 'down',
  ArrowDown: 'down',
  KeyA: 'left',
  ArrowLeft: 'left',
  KeyD: 'right',
  ArrowRight: 'right',
};

/** KeyboardEvent.key fallback for events without a code. */
const BY_KEY: Record<string, Dir> = {
  w: 'up',
  W: 'up',
  ArrowUp: 'up',
  s: 'down',
  S: 'down',
  ArrowDown: 'down',
  a: 'left',
  A: 'left',
  ArrowLeft: 'left',
  d: 'right',
  D: 'right',
  ArrowRight: 'right',
};

export function directionOf(ev: { code?: string; key?: string }): Dir | null {
  if (ev.code !== undefined && ev.code !== '') {
    const d = BY_CODE[ev.code];
    if (d !== undefined) return d;
  }
  if (ev.key !== undefined) return BY_KEY[ev.key] ?? null;
  return null;
}

/**
 * Tracks held keys. Two physical keys can map to one direction (W and ArrowUp);
 * the direction is held while any of them is.
 */
export class KeyState {
  private readonly held = new Map<string, Dir>();
  private current: Keys = noKeys();

  constructor(private readonly onChange: (keys: Keys) => void) {}

  get keys(): Keys {
    return { ...this.current };
  }

  /** Returns true when the event was a game key. */
  down(ev: { code?: string; key?: string }): boolean {
    const d = directionOf(ev);
    if (d === null) return false;
    this.held.set(ev.code || ev.key || d, d);
    this.update();
    return true;
  }

  up(ev: { code?: string; key?: string }): boolean {
    const d = directionOf(ev);
    if (d === null) return false;
    this.held.delete(ev.code || ev.key || d);
    this.update();
    return true;
  }

  /** Releases everything (window lost focus: keyup events will not come). */
  releaseAll(): void {
    this.held.clear();
    this.update();
  }

  private update(): void {
    const next = noKeys();
    for (const d of this.held.values()) next[d] = true;
    if (keysEqual(next, this.current)) return;
    this.current = next;
    this.onChange({ ...next });
  }
}

/** Wires a KeyState to window keyboard and focus events; returns a detach function. */
export function attachKeyboard(target: Window, state: KeyState): () => void {
  const isEditable = (ev: KeyboardEvent) => {
    const t = ev.target as HTMLElement | null;
    return t !== null && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable === true);
  };
  const onDown = (ev: KeyboardEvent) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || isEditable(ev)) return;
    if (state.down(ev)) ev.preventDefault();
  };
  const onUp = (ev: KeyboardEvent) => {
    if (state.up(ev)) ev.preventDefault();
  };
  const onBlur = () => state.releaseAll();
  const onVis = () => {
    if (target.document.visibilityState === 'hidden') state.releaseAll();
  };
  target.addEventListener('keydown', onDown);
  target.addEventListener('keyup', onUp);
  target.addEventListener('blur', onBlur);
  target.document.addEventListener('visibilitychange', onVis);
  return () => {
    target.removeEventListener('keydown', onDown);
    target.removeEventListener('keyup', onUp);
    target.removeEventListener('blur', onBlur);
    target.document.removeEventListener('visibilitychange', onVis);
  };
}
