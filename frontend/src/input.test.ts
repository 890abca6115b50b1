import { describe, expect, it } from 'vitest';
import { directionOf, KeyState } from './input';
import type { Keys } from './protocol';

describe('KeyState', () => {
  it('maps WASD and arrows, by code or key', () => {
    expect(directionOf({ code: 'KeyW' })).toBe('up');
    expect(directionOf({ code: 'ArrowLeft' })).toBe('left');
    expect(directionOf({ code: '', key: 'd' })).toBe('right');
    expect(directionOf({ code: 'KeyQ', key: 'q' })).toBeNull();
  });

  it('reports only changes', () => {
    const seen: Keys[] = [];
    const k = new KeyState((keys) => seen.push(keys));
    k.down({ code: 'KeyD' });
    k.down({ code: 'KeyD' }); // auto-repeat
    k.down({ code: 'ArrowRight' }); // same direction
    expect(seen).toEqual([{ up: false, down: false, left: false, right: true }]);
    k.up({ code: 'KeyD' }); // ArrowRight still held
    expect(seen).toHaveLength(1);
    k.down({ code: 'KeyW' });
    k.up({ code: 'ArrowRight' });
    expect(seen).toEqual([
      { up: false, down: false, left: false, right: true },
      { up: true, down: false, left: false, right: true },
      { up: true, down: false, left: false, right: false },
    ]);
    k.releaseAll();
    expect(seen.at(-1)).toEqual({ up: false, down: false, left: false, right: false });
    k.releaseAll();
    expect(seen).toHaveLength(4);
  });
});
