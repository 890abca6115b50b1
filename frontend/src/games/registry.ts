// The browser side of the game API (docs/GAMES.md): a game module per game,
// found by the name the server sends in welcome.game. Transport, session,
// fencing, interpolation and the status panel are shared (main.ts); a module
// supplies only what is the game's: reading its members of a tick, drawing,
// turning keys and pointer into input payloads, and, optionally, a predictor
// of the own player.

import type { Predictor, TickTimeline } from '../predict/predictor';
import type { InputPayload, Params, TickMessage, TickPlayer } from '../protocol';
import type { Layers, Renderer } from '../render';
import type { RenderPlayer } from '../snapshots';

/** What a module draws with: the shared canvas renderer and a HUD element for text (scores, timers). */
export interface Stage {
  readonly renderer: Renderer;
  /** An element over the canvas that the module may fill (it is emptied when the game changes). */
  readonly hud: HTMLElement;
}

/** One frame to draw: the players interpolated at the render tick, and the newest tick. */
export interface Frame {
  readonly players: readonly RenderPlayer[];
  readonly count: number;
  /** The own player's id ('' before the welcome). */
  readonly me: string;
  /** The newest accepted tick, null before the first. */
  readonly latest: TickMessage | null;
  /** The fractional tick being shown (NaN when nothing is). */
  readonly renderTick: number;
}

/** Where a module listens for keys and pointer events. */
export interface InputTarget {
  readonly window: Window;
  readonly canvas: HTMLCanvasElement;
}

/**
 * The predictor hook of a game: client-side prediction of the own player with
 * reconciliation at the server's ack (predict/predictor.ts implements it for
 * any game whose player moves by an integer rule once per tick). S is the
 * game's state of one player, I its input. The page calls join and input as it
 * sends them, reconcile on every accepted tick that has the own player, link
 * and frame once per animation frame, and then draws the own player at (x, y)
 * instead of its interpolated position.
 */
export type PredictorHook<S, I> = Predictor<S, I>;

export type { TickTimeline };

/** A module's prediction: its hook and how its tick members and payloads map to the hook's state and input. */
export interface Prediction<S extends object = object, I = unknown> {
  readonly hook: PredictorHook<S, I>;
  /** The own player's state in a tick (p is one of tick.players). */
  serverState(tick: TickMessage, p: TickPlayer): S;
  /** The hook's input for a payload the module produced. */
  input(payload: InputPayload): I;
}

/** One game, on one page, for one room: made by GameModule.create from welcome.params. */
export interface GameInstance {
  /** A tick was accepted (fenced, newest): keep what the HUD or input needs. */
  onTick(tick: TickMessage, me: string): void;
  /** Draws one frame. */
  draw(stage: Stage, frame: Frame): void;
  /** Starts listening for the player's controls; send is called with each new payload. Returns a stop function. */
  attach(target: InputTarget, stage: Stage, send: (p: InputPayload) => void): () => void;
  /** The payload that states the controls held now, sent after every (re)connect; null when there is none. */
  current(): InputPayload | null;
  /** Read-only facts for tests (window.__tickmesh.gameState()). */
  debug(): Record<string, unknown>;
  /** The most a player moves on each axis in a tick (units), to catch others up smoothly; Infinity when unknown. */
  moveSpeed(): number;
  /** Client-side prediction of the own player, when the game has it. */
  readonly prediction?: Prediction;
}

export interface GameModule {
  /** The game's name, as in welcome.game. */
  readonly name: string;
  /** What the page calls it. */
  readonly title: string;
  /** One line on how to play. */
  readonly help: string;
  /** A game for a room, with the parameters from welcome.params; clock maps time to ticks. */
  create(params: Params, clock: TickTimeline): GameInstance;
}

/** The world size in a tick's globals (width, height), or null when it has none. */
export function worldOf(tick: TickMessage | null): { width: number; height: number } | null {
  const w = tick?.g['width'];
  const h = tick?.g['height'];
  return w !== undefined && h !== undefined && w > 0 && h > 0 ? { width: w, height: h } : null;
}

/**
 * A game this client has no module for: its players are drawn where their x
 * and y fields put them (when they have them), and there are no controls.
 */
export const watchOnly: GameModule = {
  name: '',
  title: 'an unknown game (watching only)',
  help: 'This page does not know this game: you can watch, not play.',
  create(): GameInstance {
    return {
      onTick() {},
      draw(stage, f) {
        const w = worldOf(f.latest);
        stage.renderer.draw(f.players, f.count, f.me, w?.width ?? 0, w?.height ?? 0);
      },
      attach: () => () => {},
      current: () => null,
      debug: () => ({}),
      moveSpeed: () => Infinity,
    };
  },
};

/** The games this page knows, by name. */
export class Registry {
  private readonly modules = new Map<string, GameModule>();

  constructor(modules: readonly GameModule[] = []) {
    for (const m of modules) this.add(m);
  }

  add(m: GameModule): void {
    if (m.name === '' || this.modules.has(m.name)) throw new Error(`game module ${JSON.stringify(m.name)}: empty or registered twice`);
    this.modules.set(m.name, m);
  }

  /** The module of a game, or watchOnly for one this page does not know. */
  get(name: string): GameModule {
    return this.modules.get(name) ?? watchOnly;
  }

  has(name: string): boolean {
    return this.modules.has(name);
  }

  get names(): string[] {
    return [...this.modules.keys()].sort();
  }
}
