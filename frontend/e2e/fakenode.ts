// A fake Tickmesh node for browser tests that need no Go binary: serves
// frontend/dist/app over HTTP and speaks protocol v1 only on /ws (a hello of
// another version gets bad_protocol and close 4500, as a node from before
// protocol 2 answers the browser's default protocol 2) with a minimal
// RFC 6455 implementation (text frames, close, ping). It runs a tiny 20 Hz
// simulation (speed 10 units per tick) and records every client message.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { extname, join, normalize } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface Player {
  id: string;
  name: string;
  x: number;
  y: number;
  keys: { up: boolean; down: boolean; left: boolean; right: boolean };
  ack: number;
  conn: number;
  online: boolean;
}

export class FakeConn {
  closed = false;
  player: Player | null = null;
  private buf = Buffer.alloc(0);

  constructor(private readonly node: FakeNode, readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => this.onGone());
    socket.on('error', () => this.onGone());
  }

  send(msg: unknown): void {
    if (this.closed) return;
    const payload = Buffer.from(JSON.stringify(msg));
    this.socket.write(Buffer.concat([frameHeader(0x1, payload.length), payload]));
  }

  close(code: number, reason = ''): void {
    if (this.closed) return;
    const r = Buffer.from(reason);
    const p = Buffer.alloc(2 + r.length);
    p.writeUInt16BE(code, 0);
    r.copy(p, 2);
    this.socket.write(Buffer.concat([frameHeader(0x8, p.length), p]));
    this.socket.end();
    this.onGone();
  }

  private onGone(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.player !== null) this.player.online = this.node.conns.some((c) => c !== this && !c.closed && c.player === this.player);
    this.node.conns = this.node.conns.filter((c) => c !== this);
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0] as number;
      const b1 = this.buf[1] as number;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const total = off + (masked ? 4 : 0) + len;
      if (this.buf.length < total) return;
      const mask = masked ? this.buf.subarray(off, off + 4) : null;
      const payload = Buffer.from(this.buf.subarray(off + (masked ? 4 : 0), total));
      if (mask) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
      this.buf = this.buf.subarray(total);
      const opcode = b0 & 0x0f;
      if (opcode === 0x1) this.node.onMessage(this, payload.toString('utf8'));
      else if (opcode === 0x8) this.close(1000);
      else if (opcode === 0x9) this.socket.write(Buffer.concat([frameHeader(0xa, payload.length), payload]));
    }
  }
}

function frameHeader(opcode: number, len: number): Buffer {
  if (len < 126) return Buffer.from([0x80 | opcode, len]);
  if (len < 65536) {
    const b = Buffer.alloc(4);
    b[0] = 0x80 | opcode;
    b[1] = 126;
    b.writeUInt16BE(len, 2);
    return b;
  }
  const b = Buffer.alloc(10);
  b[0] = 0x80 | opcode;
  b[1] = 127;
  b.writeBigUInt64BE(BigInt(len), 2);
  return b;
}

export class FakeNode {
  conns: FakeConn[] = [];
  /** Every client message, in order, with the player it came from. */
  received: { player: string | null; msg: Record<string, unknown> }[] = [];
  players = new Map<string, Player>();
  tokens = new Map<string, string>(); // resume token -> player id
  epoch = 1;
  seq = 0;
  /** When false, the node accepts WebSocket connections but sends no ticks. */
  ticking = true;
  /** Hellos of another protocol than 1, answered with bad_protocol and close 4500. */
  protocolRejects = 0;
  /** Close code for every new connection right after the hello (0 = none). */
  rejectWith = 0;
  /** Delay before answering a WebSocket upgrade, so a test can see the client between connections. */
  acceptDelayMs = 0;
  private server: Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private nextId = 1;
  base = '';

  constructor(private readonly appDir: string, readonly name = 'fake1') {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = normalize(join(this.appDir, path === '/' ? 'index.html' : path));
      if (!file.startsWith(this.appDir) || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket) => this.upgrade(req, socket));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.server = server;
    this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.timer = setInterval(() => this.step(), 50);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const c of [...this.conns]) c.socket.destroy();
    await new Promise((r) => this.server?.close(r));
  }

  /** Closes every connection with a close code. */
  closeAll(code: number, reason = ''): void {
    for (const c of [...this.conns]) c.close(code, reason);
  }

  messages(type: string): Record<string, unknown>[] {
    return this.received.filter((r) => r.msg['type'] === type).map((r) => r.msg);
  }

  private upgrade(req: IncomingMessage, socket: Socket): void {
    if (this.acceptDelayMs > 0) {
      setTimeout(() => this.accept(req, socket), this.acceptDelayMs);
      return;
    }
    this.accept(req, socket);
  }

  private accept(req: IncomingMessage, socket: Socket): void {
    if (socket.destroyed) return;
    const key = req.headers['sec-websocket-key'];
    if (req.url !== '/ws' || typeof key !== 'string') {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    this.conns.push(new FakeConn(this, socket));
  }

  onMessage(c: FakeConn, text: string): void {
    const msg = JSON.parse(text) as Record<string, unknown>;
    if (msg['type'] === 'hello' && msg['protocol'] !== 1) {
      // Not recorded in received: the hellos a test counts are those of the protocol the node speaks.
      this.protocolRejects++;
      c.send({ type: 'error', code: 'bad_protocol', message: 'unsupported protocol version; this server speaks protocol 1' });
      c.close(4500, 'protocol version mismatch');
      return;
    }
    this.received.push({ player: c.player?.id ?? null, msg });
    switch (msg['type']) {
      case 'hello': {
        if (this.rejectWith !== 0) {
          c.close(this.rejectWith, 'rejected by test');
          return;
        }
        const resume = msg['resume'] as string | undefined;
        let p = resume !== undefined ? this.players.get(this.tokens.get(resume) ?? '') : undefined;
        if (resume !== undefined && p === undefined) {
          c.close(4501, 'bad resume token');
          return;
        }
        if (p === undefined) {
          const id = `p${(this.nextId++).toString(16).padStart(16, '0')}`;
          p = { id, name: msg['name'] as string, x: 300, y: 400, keys: { up: false, down: false, left: false, right: false }, ack: 0, conn: 0, online: true };
          this.players.set(id, p);
        }
        // A newer connection takes the session over.
        for (const other of this.conns) if (other !== c && other.player === p) other.close(4503, 'taken over');
        const seq = (msg['seq'] as number | undefined) ?? 1;
        p.ack = Math.max(p.ack, seq);
        p.conn = seq;
        p.online = true;
        c.player = p;
        const token = `tok-${p.id}-${seq}`;
        this.tokens.set(token, p.id);
        c.send({
          type: 'welcome', protocol: 1, player: p.id, resume: token, room: (msg['room'] as string | undefined) ?? 'lobby', node: this.name,
          nodes: [{ name: this.name, url: `${this.base.replace('http:', 'ws:')}/ws` }], ack: p.ack,
        });
        break;
      }
      case 'input': {
        const p = c.player;
        if (p === null) return;
        const seq = msg['seq'] as number;
        if (seq > p.ack) {
          p.ack = seq;
          p.keys = { up: false, down: false, left: false, right: false, ...(msg['keys'] as object) };
        }
        break;
      }
      case 'ping':
        c.send(msg['t'] === undefined ? { type: 'pong' } : { type: 'pong', t: msg['t'] });
        break;
    }
  }

  private step(): void {
    this.seq++;
    for (const p of this.players.values()) {
      if (!p.online) continue;
      p.x = Math.min(1000, Math.max(0, p.x + (p.keys.right ? 10 : 0) - (p.keys.left ? 10 : 0)));
      p.y = Math.min(1000, Math.max(0, p.y + (p.keys.down ? 10 : 0) - (p.keys.up ? 10 : 0)));
    }
    if (!this.ticking) return;
    const players = [...this.players.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((p) => ({ id: p.id, name: p.name, x: p.x, y: p.y, vx: 0, vy: 0, keys: 0, ack: p.ack, conn: p.conn, online: p.online }));
    const tick = { type: 'tick', room: 'lobby', epoch: this.epoch, seq: this.seq, owner: this.name, time: Date.now(), width: 1000, height: 1000, players };
    for (const c of this.conns) if (c.player !== null) c.send(tick);
  }
}
