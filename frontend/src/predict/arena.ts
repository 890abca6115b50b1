// The arena's rules for one player, in TypeScript: the same integer arithmetic
// as games/arena (Keys.Velocity, its Apply of join/input/leave, Step) inside
// the framework's roster (pkg/sim: ack, conn, online), restricted to what the
// client predicts about itself. This is the only copy of the movement rule in
// the client; arena.test.ts holds it to the fixtures that games/arena
// generates from the real simulation (games/arena/testdata/predict),
// including clamping at the walls.
//
// createArenaPredictor() is the arena's predictor hook (games/registry.ts,
// PredictorHook): the arena module (games/arena.ts) plugs it in. The arena's
// input is the key bitmask of protocol.keysToMask.

import { KEY_DOWN, KEY_LEFT, KEY_RIGHT, KEY_UP, type TickPlayer } from '../protocol';
import { Reconciler, type PredictionRules, type Predictor, type ReconcilerOptions, type TickTimeline } from './predictor';

/** The arena's parameters that movement depends on. */
export interface ArenaParams {
  /** Arena size in units (tick.width, tick.height). */
  width: number;
  height: number;
  /** Units per tick on each axis while a key is held (welcome.params.speed, default 10). */
  speed: number;
}

/** What the client predicts of its own player: the members of tick.players[] that movement depends on. */
export interface ArenaPlayer {
  x: number;
  y: number;
  vx: number;
  vy: number;
  /** Keys held as last applied (up 1, down 2, left 4, right 8). */
  keys: number;
  /** Highest seq applied (join or input). */
  ack: number;
  /** Seq of the join of the current connection. */
  conn: number;
  online: boolean;
}

export const ALL_KEYS = KEY_UP | KEY_DOWN | KEY_LEFT | KEY_RIGHT;

export function newArenaPlayer(): ArenaPlayer {
  return { x: 0, y: 0, vx: 0, vy: 0, keys: 0, ack: 0, conn: 0, online: true };
}

export function copyArenaPlayer(dst: ArenaPlayer, src: Readonly<ArenaPlayer>): ArenaPlayer {
  dst.x = src.x;
  dst.y = src.y;
  dst.vx = src.vx;
  dst.vy = src.vy;
  dst.keys = src.keys;
  dst.ack = src.ack;
  dst.conn = src.conn;
  dst.online = src.online;
  return dst;
}

/** Keys.Velocity: each axis at full speed, opposite keys cancel, diagonals not normalised. */
export function velocityX(keys: number, speed: number): number {
  return (keys & KEY_RIGHT ? speed : 0) - (keys & KEY_LEFT ? speed : 0);
}

export function velocityY(keys: number, speed: number): number {
  return (keys & KEY_DOWN ? speed : 0) - (keys & KEY_UP ? speed : 0);
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * State.Apply of an input: ignored (false) unless seq > ack; then ack = seq
 * and, for an online player, the keys and the velocity follow. An input of an
 * offline player only consumes its seq.
 */
export function applyInput(p: ArenaPlayer, seq: number, keys: number, speed: number): boolean {
  if (seq <= p.ack) return false;
  p.ack = seq;
  if (p.online) {
    p.keys = keys & ALL_KEYS;
    p.vx = velocityX(p.keys, speed);
    p.vy = velocityY(p.keys, speed);
  }
  return true;
}

/**
 * State.Apply of a join of a present player: ignored unless seq > conn; then
 * the player is online on that connection and, unless inputs with higher seqs
 * were applied first (seq <= ack), ack = seq and keys and velocity are
 * cleared (a new connection holds no keys yet).
 */
export function applyJoin(p: ArenaPlayer, seq: number): boolean {
  if (seq <= p.conn) return false;
  const late = seq <= p.ack;
  p.conn = seq;
  p.online = true;
  if (!late) {
    p.ack = seq;
    p.keys = 0;
    p.vx = 0;
    p.vy = 0;
  }
  return true;
}

/** State.Apply of a leave: only of the current, online connection; keys and velocity cleared. */
export function applyLeave(p: ArenaPlayer, conn: number): boolean {
  if (!p.online || p.conn !== conn) return false;
  p.online = false;
  p.keys = 0;
  p.vx = 0;
  p.vy = 0;
  return true;
}

/** State.Step for one player: move by the velocity, clamped to [0, width] x [0, height]. */
export function step(p: ArenaPlayer, params: Readonly<ArenaParams>): void {
  p.x = clamp(p.x + p.vx, 0, params.width);
  p.y = clamp(p.y + p.vy, 0, params.height);
}

/** Copies the predicted members of a tick's player (the arena's fields, and the roster's ack, conn, online). */
export function fromTickPlayer(dst: ArenaPlayer, p: Readonly<TickPlayer>): ArenaPlayer {
  dst.x = p.f['x'] ?? 0;
  dst.y = p.f['y'] ?? 0;
  dst.vx = p.f['vx'] ?? 0;
  dst.vy = p.f['vy'] ?? 0;
  dst.keys = p.f['keys'] ?? 0;
  dst.ack = p.ack;
  dst.conn = p.conn;
  dst.online = p.online;
  return dst;
}

/**
 * The speed a tick proves, or 0: a player whose keys move it on an axis has
 * |velocity| = speed on that axis. Used when welcome carries no params.
 */
export function speedFromTick(players: readonly Readonly<TickPlayer>[]): number {
  for (const p of players) {
    const keys = p.f['keys'] ?? 0;
    const vx = p.f['vx'] ?? 0;
    const vy = p.f['vy'] ?? 0;
    if (velocityX(keys, 1) !== 0 && vx !== 0) return Math.abs(vx);
    if (velocityY(keys, 1) !== 0 && vy !== 0) return Math.abs(vy);
  }
  return 0;
}

/** The arena's rules in the shape the generic reconciler replays. params is read live (it may change). */
export function arenaRules(params: Readonly<ArenaParams>): PredictionRules<ArenaPlayer, number> {
  return {
    create: newArenaPlayer,
    copy: copyArenaPlayer,
    input: (s, seq, keys) => applyInput(s, seq, keys, params.speed),
    join: (s, seq) => applyJoin(s, seq),
    step: (s) => step(s, params),
    ack: (s) => s.ack,
    x: (s) => s.x,
    y: (s) => s.y,
    bounds: () => params,
  };
}

export type ArenaPredictor = Predictor<ArenaPlayer, number>;

/**
 * The arena's predictor hook: a Reconciler over arenaRules. Snap distance
 * defaults to four ticks of movement (40 units at speed 10): one or two ticks
 * of error are normal (a key change landing on the other side of a tick
 * boundary) and are smoothed; more means the server moved the player
 * (teleport, failover to an older state).
 */
export function createArenaPredictor(params: ArenaParams, clock: TickTimeline, opts: ReconcilerOptions = {}): Reconciler<ArenaPlayer, number> {
  return new Reconciler(arenaRules(params), clock, { snapDistance: () => 4 * params.speed, ...opts });
}
