// Tickmesh client protocol, versions 1 and 2: WebSocket, one JSON object per text frame (and, in version 2,
// ticks as binary frames: frames.ts).
//
// This module is pure: types, decoding of server messages with validation, and
// encoding of client messages. It is shared by the game page and the unit tests
// (which check it against the Go fixtures in pkg/protocol/testdata/fixtures).

/** Protocol 1: JSON ticks. */
export const PROTOCOL_VERSION = 1;
/** Protocol 2: ticks are binary keyframes and deltas (frames.ts); every other message is protocol 1's. */
export const PROTOCOL_VERSION_2 = 2;
export const DEFAULT_ROOM = 'lobby';
/** Display names are 1-32 code points after trimming (protocol.MaxNameRunes). */
export const MAX_NAME_RUNES = 32;
/** Resume tokens are 1-512 bytes of printable ASCII without spaces. */
export const MAX_RESUME_LEN = 512;
/** Room names are 1-32 characters of a-z, 0-9 and '-'. */
export const MAX_ROOM_LEN = 32;
/** Sequence numbers are 1..2^53-1. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** input.data is at most this many bytes of JSON (each game declares its own, smaller bound). */
export const MAX_DATA_BYTES = 1024;

// ---------------------------------------------------------------------------
// Client -> server

export interface Keys {
  up: boolean;
  down: boolean;
  left: boolean;
  right: boolean;
}

export interface HelloMessage {
  type: 'hello';
  protocol: number;
  name: string;
  /** Resume token from an earlier welcome; omitted for a new player. */
  resume?: string;
  /** Room to join; omitted means the server's default ("lobby"). */
  room?: string;
  /**
   * The client's sequence number for this connection's join. Optional on the
   * wire only without resume (then it stands for 1); this client always sends it.
   */
  seq?: number;
}

/**
 * An input: a payload for the room's game, which validates it. Exactly one of
 * keys (protocol 1's original form, the arena's keys object) and data (any
 * game's payload, any JSON value but null) is present.
 */
export interface InputMessage {
  type: 'input';
  seq: number;
  keys?: Keys;
  data?: unknown;
}

/** An input's payload: what a game module produces. */
export type InputPayload = { keys: Keys } | { data: unknown };

export interface PingMessage {
  type: 'ping';
  /** Echoed in the pong; optional on the wire. */
  t?: number;
}

export type ClientMessage = HelloMessage | InputMessage | PingMessage;

// ---------------------------------------------------------------------------
// Server -> client

export interface NodeInfo {
  name: string;
  /** WebSocket URL of the node, e.g. ws://127.0.0.1:8081/ws */
  url: string;
}

/** Used when welcome carries no params (a node from before games): the arena's default speed and the default tick rate. */
export const DEFAULT_SPEED = 10;
export const DEFAULT_TICK_RATE = 20;

export interface WelcomeMessage {
  type: 'welcome';
  protocol: number;
  player: string;
  resume: string;
  room: string;
  node: string;
  nodes: NodeInfo[];
  /** The highest client seq the server has applied for this player. */
  ack: number;
  /** The game the room plays (welcome.game), '' when absent. */
  game: string;
  /** The game's parameters (welcome.params: sizes, speeds, tick_rate), by name; {} when absent. */
  params: Params;
}

/** Named numbers, such as welcome.params. */
export type Params = Record<string, number>;

export interface NodesMessage {
  type: 'nodes';
  nodes: NodeInfo[];
}

/** One player in a tick: the framework's members, and the game's fields in f. */
export interface TickPlayer {
  id: string;
  name: string;
  /** Highest seq of this player applied. */
  ack: number;
  /** Seq of the join of its current connection. */
  conn: number;
  online: boolean;
  /** Tick at which it left; 0 while online. */
  away: number;
  /** The game's fields of the player, by name (the arena's x, y, vx, vy, keys). */
  f: Params;
}

/** One of the game's shared objects in a tick. */
export interface TickObject {
  id: number;
  /** The object's fields, by name (a pickup's x, y, value). */
  f: Params;
}

/**
 * One tick of a room. The framework's members are the same for every game;
 * the game's state is in g (its globals), players[].f and objects (its object
 * lists, by name): docs/PROTOCOL.md, tick.
 */
export interface TickMessage {
  type: 'tick';
  room: string;
  epoch: number;
  /** Game tick number. */
  seq: number;
  owner: string;
  /** Server wall clock, ms since the Unix epoch. */
  time: number;
  /** The game's global fields, by name (the arena's width and height). */
  g: Params;
  players: TickPlayer[];
  /** The game's object lists, by name (collect's pickups). */
  objects: Record<string, TickObject[]>;
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

export interface PongMessage {
  type: 'pong';
  /** The ping's t, or null when the ping had none. */
  t: number | null;
}

export type ServerMessage =
  | WelcomeMessage
  | NodesMessage
  | TickMessage
  | ErrorMessage
  | PongMessage;

// ---------------------------------------------------------------------------
// Decoding

/** Thrown by decodeServerMessage for a frame that is not a valid server message. */
export class DecodeError extends Error {
  constructor(
    message: string,
    /** "json", "shape" or "unknown_type" (the last one is safe to ignore). */
    readonly kind: 'json' | 'shape' | 'unknown_type',
  ) {
    super(message);
    this.name = 'DecodeError';
  }
}

type Obj = Record<string, unknown>;

function fail(path: string, what: string): never {
  throw new DecodeError(`${path}: ${what}`, 'shape');
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj, key: string, path: string, dflt?: string): string {
  const v = o[key];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string') fail(`${path}.${key}`, 'expected a string');
  return v;
}

function num(o: Obj, key: string, path: string, dflt?: number): number {
  const v = o[key];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${path}.${key}`, 'expected a number');
  return v;
}

/** A non-negative safe integer (counters, sequence numbers, epochs). */
function uint(o: Obj, key: string, path: string, dflt?: number): number {
  const v = num(o, key, path, dflt);
  if (!Number.isSafeInteger(v) || v < 0) fail(`${path}.${key}`, 'expected a non-negative integer');
  return v;
}

function bool(o: Obj, key: string, path: string, dflt?: boolean): boolean {
  const v = o[key];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'boolean') fail(`${path}.${key}`, 'expected a boolean');
  return v;
}

function arr(o: Obj, key: string, path: string, optional = false): unknown[] {
  const v = o[key];
  if (v === undefined && optional) return [];
  if (!Array.isArray(v)) fail(`${path}.${key}`, 'expected an array');
  return v;
}

function decodeNodes(list: unknown[], path: string): NodeInfo[] {
  const out: NodeInfo[] = [];
  list.forEach((n, i) => {
    const p = `${path}[${i}]`;
    if (!isObj(n)) fail(p, 'expected an object');
    out.push({ name: str(n, 'name', p), url: str(n, 'url', p) });
  });
  return out;
}

/** Members of a tick that are the framework's; every other number member is the game's. */
const TICK_MEMBERS = new Set(['type', 'room', 'epoch', 'seq', 'owner', 'time', 'players']);
const PLAYER_MEMBERS = new Set(['id', 'name', 'ack', 'conn', 'online', 'away']);

/** The finite number members of o not in skip, as game fields. */
function fields(o: Obj, skip: ReadonlySet<string>): Params {
  const f: Params = {};
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number' && Number.isFinite(v) && !skip.has(k) && k !== '__proto__') f[k] = v;
  }
  return f;
}

const ID_ONLY = new Set(['id']);
const ID_NONE = new Set<string>();

function decodePlayer(v: unknown, path: string): TickPlayer {
  if (!isObj(v)) fail(path, 'expected an object');
  const id = str(v, 'id', path);
  if (id === '') fail(`${path}.id`, 'empty');
  return {
    id,
    name: str(v, 'name', path, ''),
    ack: uint(v, 'ack', path, 0),
    conn: uint(v, 'conn', path, 0),
    online: bool(v, 'online', path, true),
    away: uint(v, 'away', path, 0),
    f: fields(v, PLAYER_MEMBERS),
  };
}

/** An array of objects with integer ids is an object list; anything else is not the game's (null). */
function decodeObjects(v: unknown[]): TickObject[] | null {
  const out: TickObject[] = [];
  for (const o of v) {
    if (!isObj(o) || typeof o['id'] !== 'number' || !Number.isSafeInteger(o['id'])) return null;
    out.push({ id: o['id'], f: fields(o, ID_ONLY) });
  }
  return out;
}

function decodeTick(raw: Obj, p: string): TickMessage {
  const list = arr(raw, 'players', p);
  const players: TickPlayer[] = new Array<TickPlayer>(list.length);
  for (let i = 0; i < list.length; i++) players[i] = decodePlayer(list[i], `${p}.players[${i}]`);
  const objects: Record<string, TickObject[]> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (TICK_MEMBERS.has(k) || !Array.isArray(v) || k === '__proto__') continue;
    const objs = decodeObjects(v);
    if (objs !== null) objects[k] = objs;
  }
  return {
    type: 'tick',
    room: str(raw, 'room', p),
    epoch: uint(raw, 'epoch', p),
    seq: uint(raw, 'seq', p),
    owner: str(raw, 'owner', p, ''),
    time: num(raw, 'time', p, 0),
    g: fields(raw, TICK_MEMBERS),
    players,
    objects,
  };
}

/**
 * Decodes and validates one server frame. Required fields must be present with
 * the right type; fields documented as informational (player ack/conn/online/
 * away, welcome nodes/ack/game/params, tick owner/time) get defaults when
 * absent so that a server adding or dropping them does not break old clients.
 * A tick's other number members are the game's (g, players[].f), and its other
 * arrays of objects with ids its object lists; anything else unknown is
 * ignored. A game module checks the members it needs.
 *
 * @throws DecodeError
 */
export function decodeServerMessage(text: string): ServerMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DecodeError(`invalid JSON: ${(e as Error).message}`, 'json');
  }
  return decodeServerValue(raw);
}

/** Like decodeServerMessage, for an already parsed JSON value. */
export function decodeServerValue(raw: unknown): ServerMessage {
  if (!isObj(raw)) fail('$', 'expected an object');
  const type = raw['type'];
  if (typeof type !== 'string') fail('$.type', 'expected a string');
  const p = type;
  switch (type) {
    case 'welcome': {
      const player = str(raw, 'player', p);
      if (player === '') fail(`${p}.player`, 'empty');
      return {
        type,
        protocol: uint(raw, 'protocol', p),
        player,
        resume: str(raw, 'resume', p),
        room: str(raw, 'room', p, DEFAULT_ROOM),
        node: str(raw, 'node', p, ''),
        nodes: decodeNodes(arr(raw, 'nodes', p, true), `${p}.nodes`),
        ack: uint(raw, 'ack', p, 0),
        game: typeof raw['game'] === 'string' ? raw['game'] : '',
        params: isObj(raw['params']) ? fields(raw['params'], ID_NONE) : {},
      };
    }
    case 'nodes':
      return { type, nodes: decodeNodes(arr(raw, 'nodes', p), `${p}.nodes`) };
    case 'tick':
      return decodeTick(raw, p);
    case 'error':
      return { type, code: str(raw, 'code', p), message: str(raw, 'message', p, '') };
    case 'pong':
      return { type, t: raw['t'] === undefined ? null : num(raw, 't', p) };
    default:
      throw new DecodeError(`unknown message type ${JSON.stringify(type)}`, 'unknown_type');
  }
}

// ---------------------------------------------------------------------------
// Encoding

/**
 * Returns null when msg is a client message the server accepts (mirroring the
 * strict rules of the Go decoder, pkg/protocol.DecodeClient, on the parsed
 * value), else the offending field. encodeClientMessage refuses to send
 * anything else, so the client never produces a frame the server rejects.
 */
export function checkClientMessage(msg: unknown): string | null {
  if (!isObj(msg)) return 'not an object';
  const seqOK = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= MAX_SEQ;
  const only = (allowed: readonly string[]) => Object.keys(msg).find((k) => !allowed.includes(k)) ?? null;
  switch (msg['type']) {
    case 'hello': {
      if (msg['protocol'] !== PROTOCOL_VERSION && msg['protocol'] !== PROTOCOL_VERSION_2) return 'protocol';
      const extra = only(['type', 'protocol', 'name', 'resume', 'room', 'seq']);
      if (extra !== null) return extra;
      const name = msg['name'];
      if (typeof name !== 'string' || !validName(name)) return 'name';
      const resume = msg['resume'];
      if (resume !== undefined && (typeof resume !== 'string' || !validResume(resume))) return 'resume';
      const room = msg['room'];
      if (room !== undefined && (typeof room !== 'string' || !validRoom(room))) return 'room';
      const seq = msg['seq'];
      if (seq !== undefined && !seqOK(seq)) return 'seq';
      if (resume !== undefined && seq === undefined) return 'seq';
      return null;
    }
    case 'input': {
      const extra = only(['type', 'seq', 'keys', 'data']);
      if (extra !== null) return extra;
      if (!seqOK(msg['seq'])) return 'seq';
      const k = msg['keys'];
      const d = msg['data'];
      if ((k === undefined) === (d === undefined)) return 'data';
      if (d !== undefined) {
        if (d === null) return 'data';
        const text = JSON.stringify(d);
        if (text === undefined || new TextEncoder().encode(text).length > MAX_DATA_BYTES) return 'data';
        return null;
      }
      if (!isObj(k)) return 'keys';
      for (const key of Object.keys(k)) {
        if (key !== 'up' && key !== 'down' && key !== 'left' && key !== 'right') return 'keys';
        if (typeof k[key] !== 'boolean') return 'keys';
      }
      return null;
    }
    case 'ping': {
      const extra = only(['type', 't']);
      if (extra !== null) return extra;
      const t = msg['t'];
      return t === undefined || (typeof t === 'number' && Number.isFinite(t)) ? null : 't';
    }
    default:
      return 'type';
  }
}

/** Serializes a client message, omitting undefined optional fields. */
export function encodeClientMessage(msg: ClientMessage): string {
  let out: ClientMessage;
  switch (msg.type) {
    case 'hello': {
      // Field order as documented (cosmetic only); absent optionals are omitted.
      const h: HelloMessage = { type: 'hello', protocol: msg.protocol, name: msg.name };
      if (msg.resume !== undefined && msg.resume !== '') h.resume = msg.resume;
      if (msg.room !== undefined) h.room = msg.room;
      if (msg.seq !== undefined) h.seq = msg.seq;
      out = h;
      break;
    }
    case 'input':
      out =
        msg.keys === undefined
          ? { type: 'input', seq: msg.seq, data: msg.data }
          : { type: 'input', seq: msg.seq, keys: { up: msg.keys.up, down: msg.keys.down, left: msg.keys.left, right: msg.keys.right } };
      break;
    case 'ping':
      out = msg.t === undefined ? { type: 'ping' } : { type: 'ping', t: msg.t };
      break;
  }
  const bad = checkClientMessage(out);
  if (bad !== null) throw new Error(`refusing to encode invalid ${msg.type} message (${bad})`);
  return JSON.stringify(out);
}

/** The input message of a payload. */
export function inputMessage(seq: number, payload: InputPayload): InputMessage {
  return 'keys' in payload ? { type: 'input', seq, keys: payload.keys } : { type: 'input', seq, data: payload.data };
}

export function helloMessage(opts: { name: string; seq?: number; resume?: string | null; room?: string; protocol?: number }): HelloMessage {
  const m: HelloMessage = { type: 'hello', protocol: opts.protocol ?? PROTOCOL_VERSION, name: opts.name };
  if (opts.resume) m.resume = opts.resume;
  if (opts.room !== undefined) m.room = opts.room;
  if (opts.seq !== undefined) m.seq = opts.seq;
  return m;
}

// ---------------------------------------------------------------------------
// Names, rooms, keys

// Not printable in the sense of Go's unicode.IsPrint: control, format,
// surrogate, private-use and unassigned code points, and every white space
// except the ASCII space.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]|(?! )[\s\p{Zs}]/u;
// White space trimmed by Go's strings.TrimSpace (Unicode White_Space).
const TRIM = /^[\s\u0085]+|[\s\u0085]+$/gu;

/** Mirrors the server's name rule: 1-32 printable code points after trimming white space. */
export function validName(name: string): boolean {
  if (!name.isWellFormed()) return false;
  let n = 0;
  for (const ch of name.replace(TRIM, '')) {
    if (++n > MAX_NAME_RUNES) return false;
    if (UNPRINTABLE.test(ch)) return false;
  }
  return n > 0;
}

/** Makes any string an acceptable display name, or '' (drops unprintable runes, trims, truncates). */
export function sanitizeName(name: string): string {
  let out = '';
  let n = 0;
  for (const ch of name.toWellFormed().replace(TRIM, '')) {
    if (UNPRINTABLE.test(ch)) continue;
    if (++n > MAX_NAME_RUNES) break;
    out += ch;
  }
  return out.replace(TRIM, '');
}

/** Room names: 1-32 characters of a-z, 0-9 and '-' (protocol.ValidRoom). */
export function validRoom(room: string): boolean {
  return /^[a-z0-9-]{1,32}$/.test(room);
}

/** Resume tokens: 1-512 characters of printable ASCII without spaces. */
export function validResume(token: string): boolean {
  return /^[\x21-\x7e]{1,512}$/.test(token);
}

export const KEY_UP = 1;
export const KEY_DOWN = 2;
export const KEY_LEFT = 4;
export const KEY_RIGHT = 8;

export function keysToMask(k: Keys): number {
  return (k.up ? KEY_UP : 0) | (k.down ? KEY_DOWN : 0) | (k.left ? KEY_LEFT : 0) | (k.right ? KEY_RIGHT : 0);
}

export function keysEqual(a: Keys, b: Keys): boolean {
  return a.up === b.up && a.down === b.down && a.left === b.left && a.right === b.right;
}

export function noKeys(): Keys {
  return { up: false, down: false, left: false, right: false };
}

// ---------------------------------------------------------------------------
// Close codes

export type CloseAction =
  /** Reconnect after backoff; prefer another endpoint. */
  | 'retry'
  /** Stop and show the reason. */
  | 'terminal'
  /** 4501: forget the resume token and seq, then reconnect once as a new player. */
  | 'reset';

export interface CloseClass {
  action: CloseAction;
  reason: string;
}

const CLOSE_REASONS: Record<number, string> = {
  4000: 'server draining',
  4001: 'connection too slow',
  4002: 'room has no owner',
  4004: 'server overloaded',
  4005: 'idle',
  4500: 'protocol version mismatch: reload the page to get the current client',
  4501: 'session could not be resumed',
  4502: 'too many errors from this client',
  4503: 'this session was taken over by a newer connection (another tab?)',
  4504: 'this page\'s origin is not allowed by the server',
  4505: 'the room is full',
  4506: 'this address is in too many rooms',
};

/**
 * Classifies a WebSocket close code: 4000-4499 retry (elsewhere if possible),
 * 4500-4999 terminal except 4501 (reset identity), anything else retry.
 */
export function classifyClose(code: number): CloseClass {
  const known = CLOSE_REASONS[code];
  if (code === 4501) return { action: 'reset', reason: known ?? '' };
  if (code >= 4500 && code <= 4999) return { action: 'terminal', reason: known ?? `closed by server (${code})` };
  if (code >= 4000 && code <= 4499) return { action: 'retry', reason: known ?? `closed by server (${code})` };
  if (code === 1006) return { action: 'retry', reason: 'connection lost' };
  return { action: 'retry', reason: `connection closed (${code})` };
}
