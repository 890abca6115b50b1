// Player identity that survives reconnects and reloads of the tab: the resume
// token from the last welcome and the client's sequence counter, both kept in
// sessionStorage (per tab, per room).
//
// The counter numbers every hello (the join of a connection) and every input;
// the server applies an event only when its seq is above the player's ack, so
// the counter must never go backwards while the token is in use.

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** In-memory storage, used when sessionStorage is unavailable. */
export class MemoryStorage implements StorageLike {
  private readonly m = new Map<string, string>();
  getItem(key: string): string | null {
    return this.m.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.m.set(key, value);
  }
  removeItem(key: string): void {
    this.m.delete(key);
  }
}

export class Session {
  private readonly storage: StorageLike;
  private readonly prefix: string;
  private _resume: string | null;
  private _seq: number;
  /** Player id from the last welcome (not persisted: the server tells us again). */
  player = '';

  constructor(storage: StorageLike | null, room: string) {
    this.storage = storage ?? new MemoryStorage();
    this.prefix = `tickmesh.${room}.`;
    this._resume = this.read('resume');
    const s = Number(this.read('seq') ?? '0');
    this._seq = Number.isSafeInteger(s) && s > 0 ? s : 0;
  }

  /** The resume token, or null for a new player. */
  get resume(): string | null {
    return this._resume;
  }

  /** The last sequence number used (0 when none). */
  get seq(): number {
    return this._seq;
  }

  /** Allocates the next sequence number and persists it before it is sent. */
  nextSeq(): number {
    this._seq++;
    this.write('seq', String(this._seq));
    return this._seq;
  }

  /** The server has applied up to ack: never reuse a number at or below it. */
  observeAck(ack: number): void {
    if (Number.isSafeInteger(ack) && ack > this._seq) {
      this._seq = ack;
      this.write('seq', String(ack));
    }
  }

  /** Stores the identity from a welcome. */
  welcome(player: string, resume: string, ack: number): void {
    this.player = player;
    if (resume !== '' && resume !== this._resume) {
      this._resume = resume;
      this.write('resume', resume);
    }
    this.observeAck(ack);
  }

  /** Forgets the token and the counter (after close code 4501). */
  clear(): void {
    this._resume = null;
    this._seq = 0;
    this.player = '';
    this.remove('resume');
    this.remove('seq');
  }

  private read(k: string): string | null {
    try {
      return this.storage.getItem(this.prefix + k);
    } catch {
      return null;
    }
  }

  private write(k: string, v: string): void {
    try {
      this.storage.setItem(this.prefix + k, v);
    } catch {
      /* quota or privacy mode: keep the in-memory value */
    }
  }

  private remove(k: string): void {
    try {
      this.storage.removeItem(this.prefix + k);
    } catch {
      /* ignore */
    }
  }
}

/** sessionStorage when usable, else null. */
export function browserSessionStorage(): StorageLike | null {
  try {
    const s = globalThis.sessionStorage;
    const probe = '__tickmesh_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch {
    return null;
  }
}
