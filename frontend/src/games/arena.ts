// The arena (games/arena): move with WASD or the arrow keys. Its input is the
// keys object, sent as input.keys (protocol 1's original form, so this page
// also plays on nodes from before games had payloads); its state is the
// world's width and height and per player x, y, vx, vy and keys.

import { attachKeyboard, KeyState } from '../input';
import type { Params, TickMessage, TickPlayer } from '../protocol';
import { worldOf, type GameInstance, type GameModule, type Prediction, type TickTimeline } from './registry';

/** The arena's members of a player (tick.players[].f). */
export interface ArenaPlayer {
  x: number;
  y: number;
  vx: number;
  vy: number;
  /** Keys held: up 1, down 2, left 4, right 8. */
  keys: number;
}

/** Reads a tick player's arena fields (0 where absent). */
export function arenaPlayer(p: Readonly<TickPlayer>): ArenaPlayer {
  return { x: p.f['x'] ?? 0, y: p.f['y'] ?? 0, vx: p.f['vx'] ?? 0, vy: p.f['vy'] ?? 0, keys: p.f['keys'] ?? 0 };
}

/** The arena's parameters (welcome.params), with pkg defaults for those a server did not send. */
export interface ArenaParams {
  width: number;
  height: number;
  speed: number;
  tickRate: number;
}

export function arenaParams(p: Params): ArenaParams {
  const pos = (k: string, d: number) => {
    const v = p[k];
    return v !== undefined && v > 0 ? v : d;
  };
  return { width: pos('width', 1000), height: pos('height', 1000), speed: pos('speed', 10), tickRate: pos('tick_rate', 20) };
}

export interface ArenaOptions {
  /** Client-side prediction of the own player (the predictor module plugs in here). */
  predict?: (params: ArenaParams, clock: TickTimeline) => Prediction;
}

/** The arena module; options add what other modules provide (a predictor). */
export function arenaModule(opts: ArenaOptions = {}): GameModule {
  return {
    name: 'arena',
    title: 'Arena',
    help: 'Move with WASD or the arrow keys.',
    create(params: Params, clock: TickTimeline): GameInstance {
      const ap = arenaParams(params);
      let keys: KeyState | null = null;
      let latest: TickMessage | null = null;
      const inst: GameInstance = {
        onTick(t) {
          latest = t;
        },
        draw(stage, f) {
          const w = worldOf(f.latest);
          stage.renderer.draw(f.players, f.count, f.me, w?.width ?? 0, w?.height ?? 0);
        },
        attach(target, _stage, send) {
          keys = new KeyState((k) => send({ keys: k }));
          const detach = attachKeyboard(target.window, keys);
          return () => {
            detach();
            keys = null;
          };
        },
        current() {
          return keys === null ? null : { keys: keys.keys };
        },
        debug() {
          const w = worldOf(latest);
          return { width: w?.width ?? ap.width, height: w?.height ?? ap.height, speed: ap.speed };
        },
      };
      if (opts.predict !== undefined) return { ...inst, prediction: opts.predict(ap, clock) };
      return inst;
    },
  };
}
