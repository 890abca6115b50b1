// Protocol 2's ticks: binary keyframes and deltas (docs/PROTOCOL.md, "Protocol 2"; the Go side is
// pkg/protocol/compact). A TickDecoder keeps the state the frames of one connection describe and turns every
// frame into a TickMessage, the same decoded tick protocol 1's JSON gives (protocol.ts), so that everything
// after the transport (fencing, interpolation, game modules) is the same for both protocols.
//
// No allocation per tick in the hot path: a delta is applied to a copy of the state kept in preallocated typed
// arrays (so that a frame that does not decode leaves the state as it was), and the TickMessage is one of a ring
// of reused objects, its players and objects reused too. A tick object is rewritten ringSize ticks later: keep
// one no longer than that (the snapshot buffer keeps fewer). Strings are made only for what is new: a player's
// id and name when it joins or is renamed, the names of a keyframe whose schema changed.

import type { Params, TickMessage, TickObject, TickPlayer } from './protocol';

export const KEYFRAME = 0xb1;
export const DELTA = 0xb2;

/** Limits of the format (compact.MaxSlots, ...): a frame beyond them is malformed. */
export const MAX_SLOTS = 1 << 16;
export const MAX_OBJECTS = 1 << 16;
export const MAX_NAMES = 256;
export const MAX_STRING = 255;
export const MAX_VALUES = 1 << 21;
const MAX_VALUE = Number.MAX_SAFE_INTEGER;

// Delta sections and object parts (compact's secGlobals..., objChanged...).
const SEC_GLOBALS = 1;
const SEC_LEFT = 2;
const SEC_JOINED = 4;
const SEC_ROSTER = 8;
const SEC_PLAYERS = 16;
const SEC_OBJECTS = 32;
const SEC_ALL = 63;
const OBJ_CHANGED = 1;
const OBJ_REMOVED = 2;
const OBJ_ADDED = 4;
const OBJ_ALL = 7;

/** A frame that does not decode (malformed), or a delta whose base is not the decoder's state (base). */
export class FrameError extends Error {
  constructor(
    message: string,
    readonly base: boolean,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

/** The names of a game's integers, as keyframes carry them. */
export interface FrameSchema {
  readonly game: string;
  readonly globals: readonly string[];
  readonly player: readonly string[];
  readonly objects: readonly { readonly name: string; readonly fields: readonly string[] }[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const HEX = '0123456789abcdef';
const NAME = /^[a-z][a-z0-9_]{0,31}$/;
const PLAYER_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ROOM = /^[a-z0-9-]{1,32}$/;
const GAME = /^[a-z0-9-]{1,32}$/;

// ---------------------------------------------------------------------------
// Reading

class Reader {
  b: Uint8Array = new Uint8Array(0);
  i = 0;

  reset(b: Uint8Array): void {
    this.b = b;
    this.i = 0;
  }

  get left(): number {
    return this.b.length - this.i;
  }

  fail(what: string): never {
    throw new FrameError(`malformed frame at byte ${this.i}: ${what}`, false);
  }

  byte(): number {
    if (this.i >= this.b.length) this.fail('truncated');
    return this.b[this.i++] as number;
  }

  /**
   * A varint of at most 8 bytes. Up to 7 bytes (49 bits) it is exact as a number; an 8-byte one is returned as
   * a bigint, which only zigzag() and plus() take.
   */
  private raw(): number | bigint {
    let v = 0;
    let scale = 1;
    for (let k = 0; k < 8; k++) {
      if (this.i >= this.b.length) this.fail('truncated');
      const c = this.b[this.i++] as number;
      if (k === 7) {
        if (c >= 0x80) this.fail('varint longer than 8 bytes');
        if (c === 0) this.fail('varint not minimal');
        return BigInt(v) + (BigInt(c) << 49n);
      }
      v += (c & 0x7f) * scale;
      if (c < 0x80) {
        if (c === 0 && k > 0) this.fail('varint not minimal');
        return v;
      }
      scale *= 128;
    }
    return this.fail('unreachable');
  }

  /** An unsigned integer of at most 2^53-1. */
  uint(what: string): number {
    const v = this.raw();
    if (typeof v === 'bigint') {
      if (v > BigInt(MAX_VALUE)) this.fail(`${what} over 2^53-1`);
      return Number(v);
    }
    return v;
  }

  /** A count of items of at least minBytes each, at most max. */
  count(what: string, max: number, minBytes: number): number {
    const n = this.uint(what);
    if (n > max || n * minBytes > this.left) this.fail(`${what}: count ${n} over the limit or the frame`);
    return n;
  }

  /** A zigzagged value of magnitude at most 2^53-1. */
  value(what: string): number {
    const u = this.raw();
    let v: number;
    if (typeof u === 'bigint') {
      const s = u & 1n ? -((u + 1n) >> 1n) : u >> 1n;
      if (s > BigInt(MAX_VALUE) || s < -BigInt(MAX_VALUE)) this.fail(`${what} out of range`);
      v = Number(s);
    } else {
      v = u % 2 === 1 ? -(u + 1) / 2 : u / 2;
    }
    return v;
  }

  /** old plus a zigzagged delta, refusing a result beyond ±2^53-1. */
  plus(what: string, old: number): number {
    const u = this.raw();
    let v: number;
    if (typeof u === 'bigint') {
      const d = u & 1n ? -((u + 1n) >> 1n) : u >> 1n;
      const s = BigInt(old) + d;
      if (s > BigInt(MAX_VALUE) || s < -BigInt(MAX_VALUE)) this.fail(`${what} out of range`);
      v = Number(s);
    } else {
      v = old + (u % 2 === 1 ? -(u + 1) / 2 : u / 2);
      if (v > MAX_VALUE || v < -MAX_VALUE) this.fail(`${what} out of range`);
    }
    return v;
  }

  str(what: string): string {
    const n = this.uint(what);
    if (n > MAX_STRING) this.fail(`${what}: ${n} bytes`);
    if (n > this.left) this.fail('truncated');
    if (n === 0) return '';
    let s: string;
    try {
      s = utf8.decode(this.b.subarray(this.i, this.i + n));
    } catch {
      this.fail(`${what}: not UTF-8`);
    }
    this.i += n;
    return s;
  }

  name(what: string): string {
    const s = this.str(what);
    if (!NAME.test(s)) this.fail(`${what} ${JSON.stringify(s)}`);
    return s;
  }

  id(): string {
    const tag = this.byte();
    if (tag === 0x80) {
      if (this.left < 8) this.fail('truncated');
      let s = 'p';
      for (let k = 0; k < 8; k++) {
        const c = this.b[this.i++] as number;
        s += HEX[c >> 4]! + HEX[c & 15]!;
      }
      return s;
    }
    if (tag === 0 || tag > 64) this.fail(`player id tag ${tag}`);
    if (tag > this.left) this.fail('truncated');
    let s = '';
    for (let k = 0; k < tag; k++) s += String.fromCharCode(this.b[this.i++] as number);
    if (!PLAYER_ID.test(s)) this.fail(`player id ${JSON.stringify(s)}`);
    return s;
  }

  /** A mask of n bits, ceil(n/8) bytes; returns its offset in b. Bits beyond n must be zero, and one must be set. */
  mask(n: number, what: string): number {
    const nb = (n + 7) >> 3;
    if (nb > this.left) this.fail('truncated');
    const at = this.i;
    this.i += nb;
    if (n % 8 !== 0 && (this.b[at + nb - 1] as number) >> n % 8 !== 0) this.fail(`${what}: mask beyond its fields`);
    let any = 0;
    for (let k = 0; k < nb; k++) any |= this.b[at + k] as number;
    if (any === 0) this.fail(`${what}: an empty change`);
    return at;
  }

  bit(at: number, i: number): boolean {
    return ((this.b[at + (i >> 3)] as number) & (1 << (i & 7))) !== 0;
  }

  slot(prev: number): number {
    const gap = this.uint('slot');
    const s = prev + 1 + gap;
    if (s >= MAX_SLOTS) this.fail('slot beyond the limit');
    return s;
  }
}

// ---------------------------------------------------------------------------
// State

function growF64(a: Float64Array, n: number): Float64Array {
  if (a.length >= n) return a;
  const b = new Float64Array(Math.max(n, a.length * 2, 16));
  b.set(a);
  return b;
}

function growU8(a: Uint8Array, n: number): Uint8Array {
  if (a.length >= n) return a;
  const b = new Uint8Array(Math.max(n, a.length * 2, 16));
  b.set(a);
  return b;
}

function growI32(a: Int32Array, n: number): Int32Array {
  if (a.length >= n) return a;
  const b = new Int32Array(Math.max(n, a.length * 2, 16));
  b.set(a);
  return b;
}

/** The state a stream of frames describes, players by slot (compact.State). */
class State {
  epoch = 0;
  seq = 0;
  time = 0;
  room = '';
  owner = '';
  schema: FrameSchema = { game: '', globals: [], player: [], objects: [] };
  globals: Float64Array = new Float64Array(0);
  slots = 0; // slots in use are below this
  used: Uint8Array = new Uint8Array(0);
  ids: string[] = [];
  names: string[] = [];
  ack: Float64Array = new Float64Array(0);
  conn: Float64Array = new Float64Array(0);
  away: Float64Array = new Float64Array(0);
  online: Uint8Array = new Uint8Array(0);
  fields: Float64Array = new Float64Array(0);
  order: Int32Array = new Int32Array(0); // used slots sorted by id
  n = 0;
  objIds: Float64Array[] = [];
  objFields: Float64Array[] = [];
  objN: number[] = [];

  reset(schema: FrameSchema): void {
    this.schema = schema;
    this.globals = this.globals.length === schema.globals.length ? this.globals : new Float64Array(schema.globals.length);
    this.globals.fill(0);
    this.used.fill(0);
    this.slots = 0;
    this.n = 0;
    const nk = schema.objects.length;
    if (this.objIds.length !== nk) {
      this.objIds = schema.objects.map(() => new Float64Array(0));
      this.objFields = schema.objects.map(() => new Float64Array(0));
      this.objN = schema.objects.map(() => 0);
    }
    this.objN.fill(0);
  }

  grow(slot: number): void {
    const n = slot + 1;
    const nf = this.schema.player.length;
    if (this.used.length < n) {
      this.used = growU8(this.used, n);
      this.online = growU8(this.online, this.used.length);
      this.ack = growF64(this.ack, this.used.length);
      this.conn = growF64(this.conn, this.used.length);
      this.away = growF64(this.away, this.used.length);
      while (this.ids.length < this.used.length) {
        this.ids.push('');
        this.names.push('');
      }
    }
    this.fields = growF64(this.fields, this.used.length * nf);
    if (n > this.slots) this.slots = n;
  }

  copyFrom(o: State): void {
    this.epoch = o.epoch;
    this.seq = o.seq;
    this.time = o.time;
    this.room = o.room;
    this.owner = o.owner;
    this.schema = o.schema;
    if (this.globals.length !== o.globals.length) this.globals = new Float64Array(o.globals.length);
    this.globals.set(o.globals);
    const s = o.slots;
    this.slots = 0;
    if (s > 0) this.grow(s - 1);
    this.slots = s;
    this.used.set(o.used.subarray(0, s));
    this.used.fill(0, s);
    this.online.set(o.online.subarray(0, s));
    this.ack.set(o.ack.subarray(0, s));
    this.conn.set(o.conn.subarray(0, s));
    this.away.set(o.away.subarray(0, s));
    for (let i = 0; i < s; i++) {
      this.ids[i] = o.ids[i] as string;
      this.names[i] = o.names[i] as string;
    }
    const nf = o.schema.player.length;
    this.fields.set(o.fields.subarray(0, s * nf));
    this.order = growI32(this.order, o.n);
    this.order.set(o.order.subarray(0, o.n));
    this.n = o.n;
    const nk = o.schema.objects.length;
    if (this.objIds.length !== nk) {
      this.objIds = o.schema.objects.map(() => new Float64Array(0));
      this.objFields = o.schema.objects.map(() => new Float64Array(0));
      this.objN = o.schema.objects.map(() => 0);
    }
    for (let k = 0; k < nk; k++) {
      const n = o.objN[k] as number;
      const kf = (o.schema.objects[k] as { fields: readonly string[] }).fields.length;
      this.objIds[k] = growF64(this.objIds[k] as Float64Array, n);
      this.objFields[k] = growF64(this.objFields[k] as Float64Array, n * kf);
      (this.objIds[k] as Float64Array).set((o.objIds[k] as Float64Array).subarray(0, n));
      (this.objFields[k] as Float64Array).set((o.objFields[k] as Float64Array).subarray(0, n * kf));
      this.objN[k] = n;
    }
  }

  /** Rebuilds order from the used slots and refuses an id twice. */
  sortOrder(r: Reader): void {
    let n = 0;
    this.order = growI32(this.order, this.slots);
    for (let s = 0; s < this.slots; s++) if (this.used[s]) this.order[n++] = s;
    this.n = n;
    const ids = this.ids;
    this.order.subarray(0, n).sort((a, b) => {
      const x = ids[a] as string;
      const y = ids[b] as string;
      return x < y ? -1 : x > y ? 1 : 0;
    });
    for (let i = 1; i < n; i++) {
      if (ids[this.order[i - 1] as number] === ids[this.order[i] as number]) r.fail(`player ${ids[this.order[i] as number]} twice`);
    }
  }

  values(): number {
    let v = this.schema.globals.length + this.n * this.schema.player.length;
    this.schema.objects.forEach((k, i) => (v += (this.objN[i] as number) * (1 + k.fields.length)));
    return v;
  }
}

// ---------------------------------------------------------------------------
// Decoder

interface RingEntry {
  tick: TickMessage;
  schema: FrameSchema | null;
  players: TickPlayer[];
  objects: TickObject[][];
}

function sameSchema(a: FrameSchema, b: FrameSchema): boolean {
  const eq = (x: readonly string[], y: readonly string[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return (
    a.game === b.game &&
    eq(a.globals, b.globals) &&
    eq(a.player, b.player) &&
    a.objects.length === b.objects.length &&
    a.objects.every((k, i) => k.name === (b.objects[i] as { name: string }).name && eq(k.fields, (b.objects[i] as { fields: readonly string[] }).fields))
  );
}

function record(names: readonly string[]): Params {
  const p: Params = {};
  for (const n of names) p[n] = 0;
  return p;
}

export class TickDecoder {
  private cur = new State();
  private next = new State();
  private ok = false;
  private readonly r = new Reader();
  private readonly ring: RingEntry[] = [];
  private ringAt = 0;
  private mark: Uint32Array = new Uint32Array(0);
  private gen = 0;
  private removed: Uint8Array = new Uint8Array(0);
  private tmpIds: Float64Array = new Float64Array(0);
  private tmpFields: Float64Array = new Float64Array(0);

  /** ringSize: how many tick objects are reused in turn (more than a consumer keeps). */
  constructor(readonly ringSize = 48) {}

  /** A keyframe has been applied: deltas can follow. */
  get valid(): boolean {
    return this.ok;
  }

  /** The schema of the last keyframe, null before the first. */
  get schema(): FrameSchema | null {
    return this.ok ? this.cur.schema : null;
  }

  /** Forgets the state: the next frame must be a keyframe (a new connection). */
  reset(): void {
    this.ok = false;
  }

  /**
   * Applies one frame (all of data) and returns the tick it makes: a TickMessage from the ring (see the module
   * comment). A frame that does not decode throws a FrameError (base for a delta of another tick than the
   * decoder's) and leaves the state unchanged.
   */
  apply(data: ArrayBuffer | Uint8Array): TickMessage {
    const b = data instanceof Uint8Array ? data : new Uint8Array(data);
    const r = this.r;
    r.reset(b);
    const kind = r.byte();
    if (kind !== KEYFRAME && kind !== DELTA) r.fail(`unknown frame kind ${kind}`);
    const epoch = r.uint('epoch');
    const seq = r.uint('seq');
    if (epoch < 1) r.fail('epoch 0');
    this.gen = (this.gen + 1) >>> 0;
    if (kind === DELTA) {
      const gap = r.uint('base');
      if (gap < 1 || gap > seq) r.fail(`base ${gap} ticks before ${seq}`);
      if (!this.ok || epoch !== this.cur.epoch || seq - gap !== this.cur.seq) {
        throw new FrameError(`a delta of ${epoch}/${seq - gap}→${seq} to state ${this.cur.epoch}/${this.cur.seq}`, true);
      }
      this.delta(seq);
    } else {
      this.keyframe(epoch, seq);
    }
    if (r.i !== b.length) r.fail(`${b.length - r.i} bytes after the frame`);
    const t = this.cur;
    this.cur = this.next;
    this.next = t;
    this.ok = true;
    return this.materialize();
  }

  private keyframe(epoch: number, seq: number): void {
    const r = this.r;
    const time = r.uint('time');
    const room = r.str('room');
    const owner = r.str('owner');
    if (!ROOM.test(room)) r.fail(`room ${JSON.stringify(room)}`);
    const schema = this.readSchema();
    const s = this.next;
    s.reset(schema);
    s.epoch = epoch;
    s.seq = seq;
    s.time = time;
    s.room = room;
    s.owner = owner;
    for (let i = 0; i < s.globals.length; i++) s.globals[i] = r.value('global');
    const nf = schema.player.length;
    const n = r.count('players', MAX_SLOTS, 7 + nf);
    let prev = -1;
    for (let i = 0; i < n; i++) {
      const slot = r.slot(prev);
      prev = slot;
      s.grow(slot);
      s.used[slot] = 1;
      this.roster(s, slot, true);
      for (let j = 0; j < nf; j++) s.fields[slot * nf + j] = r.value('player field');
    }
    schema.objects.forEach((kind, k) => {
      const kf = kind.fields.length;
      const n = r.count('objects', MAX_OBJECTS, 1 + kf);
      s.objIds[k] = growF64(s.objIds[k] as Float64Array, n);
      s.objFields[k] = growF64(s.objFields[k] as Float64Array, n * kf);
      const ids = s.objIds[k] as Float64Array;
      const fs = s.objFields[k] as Float64Array;
      let id = -1;
      for (let i = 0; i < n; i++) {
        id += r.uint('object id') + 1;
        if (id > MAX_VALUE) r.fail('object id');
        ids[i] = id;
        for (let j = 0; j < kf; j++) fs[i * kf + j] = r.value('object field');
      }
      s.objN[k] = n;
    });
    s.sortOrder(r);
    if (s.values() > MAX_VALUES) r.fail('too many integers');
  }

  private readSchema(): FrameSchema {
    const r = this.r;
    const names = (what: string): string[] => {
      const n = r.count(what, MAX_NAMES, 2);
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(r.name(what));
      if (new Set(out).size !== out.length) r.fail(`${what}: a name twice`);
      return out;
    };
    const game = r.str('game');
    if (game !== '' && !GAME.test(game)) r.fail(`game ${JSON.stringify(game)}`);
    const globals = names('globals');
    const player = names('player fields');
    const nk = r.count('object kinds', MAX_NAMES, 2);
    const objects: { name: string; fields: string[] }[] = [];
    for (let k = 0; k < nk; k++) {
      const name = r.name('object kind');
      objects.push({ name, fields: names('object fields') });
    }
    const top = [...globals, ...objects.map((o) => o.name)];
    if (new Set(top).size !== top.length) r.fail('a global and an object kind share a name');
    const sc: FrameSchema = { game, globals, player, objects };
    // Keep the previous schema object when the names are the same: the ring's tick objects stay as they are.
    return sameSchema(this.cur.schema, sc) ? this.cur.schema : sc;
  }

  /** Reads a player's roster members into slot: with its id and ack (a newcomer), or without (a change). */
  private roster(s: State, slot: number, withID: boolean): void {
    const r = this.r;
    if (withID) {
      s.ids[slot] = r.id();
      s.ack[slot] = r.uint('ack');
    }
    s.names[slot] = r.str('name');
    s.conn[slot] = r.uint('conn');
    const online = r.byte();
    if (online === 1) {
      s.online[slot] = 1;
      s.away[slot] = 0;
    } else if (online === 0) {
      s.online[slot] = 0;
      s.away[slot] = r.uint('away');
    } else {
      r.fail(`online byte ${online}`);
    }
  }

  private markSlot(slot: number): void {
    if (this.mark.length <= slot) {
      const m = new Uint32Array(Math.max(slot + 1, this.mark.length * 2, 16));
      m.set(this.mark);
      this.mark = m;
    }
    this.mark[slot] = this.gen;
  }

  private delta(seq: number): void {
    const r = this.r;
    const s = this.next;
    s.copyFrom(this.cur);
    s.seq = seq;
    s.time = r.plus('time', this.cur.time);
    if (s.time < 0) r.fail('time');
    const flags = r.byte();
    if (flags & ~SEC_ALL) r.fail(`sections ${flags}`);
    const sc = s.schema;
    const nf = sc.player.length;
    if (flags & SEC_GLOBALS) {
      const m = r.mask(sc.globals.length, 'globals');
      for (let i = 0; i < s.globals.length; i++) if (r.bit(m, i)) s.globals[i] = r.plus('global', s.globals[i] as number);
    }
    let membership = false;
    if (flags & SEC_LEFT) {
      const n = r.count('left', MAX_SLOTS, 1);
      if (n === 0) r.fail('left: an empty section');
      let prev = -1;
      for (let i = 0; i < n; i++) {
        const slot = r.slot(prev);
        prev = slot;
        if (slot >= s.slots || !s.used[slot]) r.fail(`slot ${slot} left but holds nobody`);
        s.used[slot] = 0;
        membership = true;
      }
    }
    if (flags & SEC_JOINED) {
      const n = r.count('joined', MAX_SLOTS, 7 + nf);
      if (n === 0) r.fail('joined: an empty section');
      let prev = -1;
      for (let i = 0; i < n; i++) {
        const slot = r.slot(prev);
        prev = slot;
        if (slot < s.slots && s.used[slot]) r.fail(`slot ${slot} joined but holds a player`);
        s.grow(slot);
        s.used[slot] = 1;
        this.roster(s, slot, true);
        for (let j = 0; j < nf; j++) s.fields[slot * nf + j] = r.value('player field');
        this.markSlot(slot);
        membership = true;
      }
    }
    const stays = (slot: number) => slot < s.slots && s.used[slot] === 1 && !(slot < this.mark.length && this.mark[slot] === this.gen);
    if (flags & SEC_ROSTER) {
      const n = r.count('roster', MAX_SLOTS, 3);
      if (n === 0) r.fail('roster: an empty section');
      let prev = -1;
      for (let i = 0; i < n; i++) {
        const slot = r.slot(prev);
        prev = slot;
        if (!stays(slot)) r.fail(`roster change of slot ${slot}`);
        this.roster(s, slot, false);
      }
    }
    if (flags & SEC_PLAYERS) {
      const n = r.count('players', MAX_SLOTS, 2);
      if (n === 0) r.fail('players: an empty section');
      let prev = -1;
      for (let i = 0; i < n; i++) {
        const slot = r.slot(prev);
        prev = slot;
        if (!stays(slot)) r.fail(`change of slot ${slot}`);
        const m = r.mask(1 + nf, 'player');
        if (r.bit(m, 0)) {
          const ack = r.plus('ack', s.ack[slot] as number);
          if (ack < 0) r.fail('ack');
          s.ack[slot] = ack;
        }
        const at = slot * nf;
        for (let j = 0; j < nf; j++) if (r.bit(m, j + 1)) s.fields[at + j] = r.plus('player field', s.fields[at + j] as number);
      }
    }
    if (flags & SEC_OBJECTS) {
      const nk = sc.objects.length;
      const m = r.mask(nk, 'object kinds');
      for (let k = 0; k < nk; k++) if (r.bit(m, k)) this.kindDelta(s, k);
    }
    if (membership) s.sortOrder(r);
    if (s.values() > MAX_VALUES) r.fail('too many integers');
  }

  private kindDelta(s: State, k: number): void {
    const r = this.r;
    const kf = (s.schema.objects[k] as { fields: readonly string[] }).fields.length;
    const n0 = s.objN[k] as number;
    const ids = s.objIds[k] as Float64Array;
    const fs = s.objFields[k] as Float64Array;
    const parts = r.byte();
    if (parts === 0 || parts & ~OBJ_ALL) r.fail(`object parts ${parts}`);
    if (parts & OBJ_CHANGED) {
      const n = r.count('changed objects', n0, 2);
      if (n === 0) r.fail('changed objects: an empty section');
      let prev = -1;
      for (let c = 0; c < n; c++) {
        const i = prev + 1 + r.uint('object');
        prev = i;
        if (i >= n0) r.fail(`changed object ${i} of ${n0}`);
        const m = r.mask(kf, 'object');
        for (let j = 0; j < kf; j++) if (r.bit(m, j)) fs[i * kf + j] = r.plus('object field', fs[i * kf + j] as number);
      }
    }
    this.removed = growU8(this.removed, n0);
    this.removed.fill(0, 0, n0);
    let kept = n0;
    if (parts & OBJ_REMOVED) {
      const n = r.count('removed objects', n0, 1);
      if (n === 0) r.fail('removed objects: an empty section');
      let prev = -1;
      for (let c = 0; c < n; c++) {
        const i = prev + 1 + r.uint('object');
        prev = i;
        if (i >= n0) r.fail(`removed object ${i} of ${n0}`);
        this.removed[i] = 1;
        kept--;
      }
    }
    // The new list: the objects kept and those added, merged by id.
    const added = parts & OBJ_ADDED ? r.count('added objects', MAX_OBJECTS - kept, 1 + kf) : 0;
    if (parts & OBJ_ADDED && added === 0) r.fail('added objects: an empty section');
    this.tmpIds = growF64(this.tmpIds, kept + added);
    this.tmpFields = growF64(this.tmpFields, (kept + added) * kf);
    let out = 0;
    let i = 0;
    const keep = (upTo: number, inclusive: boolean) => {
      for (; i < n0 && ((ids[i] as number) < upTo || (inclusive && ids[i] === upTo)); i++) {
        if (this.removed[i]) continue;
        this.tmpIds[out] = ids[i] as number;
        for (let j = 0; j < kf; j++) this.tmpFields[out * kf + j] = fs[i * kf + j] as number;
        out++;
      }
    };
    let id = -1;
    for (let a = 0; a < added; a++) {
      id += r.uint('object id') + 1;
      if (id > MAX_VALUE) r.fail('object id');
      keep(id, false);
      if (i < n0 && ids[i] === id && !this.removed[i]) r.fail(`object ${id} added twice`);
      this.tmpIds[out] = id;
      for (let j = 0; j < kf; j++) this.tmpFields[out * kf + j] = r.value('object field');
      out++;
    }
    keep(Infinity, false);
    s.objIds[k] = growF64(ids, out);
    s.objFields[k] = growF64(fs, out * kf);
    (s.objIds[k] as Float64Array).set(this.tmpIds.subarray(0, out));
    (s.objFields[k] as Float64Array).set(this.tmpFields.subarray(0, out * kf));
    s.objN[k] = out;
  }

  /** The current state as the next tick object of the ring. */
  private materialize(): TickMessage {
    const s = this.cur;
    const sc = s.schema;
    let e = this.ring[this.ringAt];
    if (e === undefined) {
      e = { tick: { type: 'tick', room: '', epoch: 0, seq: 0, owner: '', time: 0, g: {}, players: [], objects: {} }, schema: null, players: [], objects: [] };
      this.ring[this.ringAt] = e;
    }
    this.ringAt = (this.ringAt + 1) % this.ringSize;
    const t = e.tick;
    if (e.schema !== sc) {
      // Another game's names (rare): new records for them.
      t.g = record(sc.globals);
      t.objects = {};
      e.players = [];
      e.objects = sc.objects.map(() => []);
      for (const k of sc.objects) t.objects[k.name] = [];
      e.schema = sc;
    }
    t.room = s.room;
    t.epoch = s.epoch;
    t.seq = s.seq;
    t.owner = s.owner;
    t.time = s.time;
    for (let i = 0; i < sc.globals.length; i++) t.g[sc.globals[i] as string] = s.globals[i] as number;
    const nf = sc.player.length;
    const players = t.players;
    players.length = s.n;
    for (let i = 0; i < s.n; i++) {
      let p = e.players[i];
      if (p === undefined) {
        p = { id: '', name: '', ack: 0, conn: 0, online: true, away: 0, f: record(sc.player) };
        e.players[i] = p;
      }
      const slot = s.order[i] as number;
      p.id = s.ids[slot] as string;
      p.name = s.names[slot] as string;
      p.ack = s.ack[slot] as number;
      p.conn = s.conn[slot] as number;
      p.online = s.online[slot] === 1;
      p.away = p.online ? 0 : (s.away[slot] as number);
      const f = p.f;
      for (let j = 0; j < nf; j++) f[sc.player[j] as string] = s.fields[slot * nf + j] as number;
      players[i] = p;
    }
    sc.objects.forEach((kind, k) => {
      const list = t.objects[kind.name] as TickObject[];
      const pool = e.objects[k] as TickObject[];
      const n = s.objN[k] as number;
      const kf = kind.fields.length;
      const ids = s.objIds[k] as Float64Array;
      const fs = s.objFields[k] as Float64Array;
      list.length = n;
      for (let i = 0; i < n; i++) {
        let o = pool[i];
        if (o === undefined) {
          o = { id: 0, f: record(kind.fields) };
          pool[i] = o;
        }
        o.id = ids[i] as number;
        for (let j = 0; j < kf; j++) o.f[kind.fields[j] as string] = fs[i * kf + j] as number;
        list[i] = o;
      }
    });
    return t;
  }
}

// ---------------------------------------------------------------------------
// Streams (tools and fixtures): each frame preceded by its length, 4 bytes big-endian.

/** The frames of a length-prefixed stream. */
export function splitStream(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < b.length) {
    if (i + 4 > b.length) throw new FrameError('stream cut inside a length', false);
    const n = (((b[i] as number) << 24) | ((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number)) >>> 0;
    i += 4;
    if (i + n > b.length) throw new FrameError('stream cut inside a frame', false);
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}
