// The arena (games/arena): move with WASD or the arrow keys. Its input is the
// keys object, sent as input.keys (protocol 1's original form, so this page
// also plays on nodes from before games had payloads); its state is the
// world's width and height and per player x, y, vx, vy and keys.

import { attachKeyboard, KeyState } from '../input';
import { fromTickPlayer, newArenaPlayer, speedFromTick, type ArenaParams as PredictParams, type ArenaPlayer as PredictedPlayer } from '../predict/arena';
import { keysToMask, type Params, type TickMessage, type TickPlayer } from '../protocol';
import { worldOf, type GameInstance, type GameModule, type PredictorHook, type TickTimeline } from './registry';

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
  /**
   * Client-side prediction of the own player: makes the hook (predict/arena.ts's createArenaPredictor) over the
   * arena's live parameters (size from the ticks, speed from welcome or, from a node that does not announce it,
   * from what the ticks show).
   */
  predictor?: (params: PredictParams, clock: TickTimeline) => PredictorHook<PredictedPlayer, number>;
}

/** The arena module; options add what other modules provide (a predictor). */
export function arenaModule(opts: ArenaOptions = {}): GameModule {
  return {
    name: 'arena',
    title: 'Arena',
    help: 'Move with WASD or the arrow keys.',
    create(params: Params, clock: TickTimeline): GameInstance {
      const ap = arenaParams(params);
      const live: PredictParams = { width: ap.width, height: ap.height, speed: ap.speed };
      const speedAnnounced = params['speed'] !== undefined && params['speed'] > 0;
      let keys: KeyState | null = null;
      let latest: TickMessage | null = null;
      const inst: GameInstance = {
        onTick(t) {
          latest = t;
          const w = worldOf(t);
          if (w !== null) {
            live.width = w.width;
            live.height = w.height;
          }
          if (!speedAnnounced) {
            const sp = speedFromTick(t.players);
            if (sp > 0) live.speed = sp;
          }
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
          return { width: live.width, height: live.height, speed: live.speed };
        },
        moveSpeed() {
          return live.speed;
        },
      };
      if (opts.predictor === undefined) return inst;
      const hook = opts.predictor(live, clock);
      const serverMe = newArenaPlayer();
      return {
        ...inst,
        prediction: {
          hook: hook as PredictorHook<object, unknown>,
          serverState: (_t: TickMessage, p: TickPlayer) => fromTickPlayer(serverMe, p),
          input: (p) => ('keys' in p ? keysToMask(p.keys) : 0),
        },
      };
    },
  };
}
