import { describe as group, expect, it } from 'vitest';
import {
  chipLabel,
  decodeEvent,
  decodeHeartbeat,
  decodeState,
  describe,
  formatGap,
  layout,
  Timeline,
  DEFAULT_LAYOUT,
  type ViewEvent,
  type ViewState,
} from './clusterview';

// What the node sends (pkg/clusterview's JSON, snake_case).
const wireState = {
  node: 'n1',
  boot: 'abc',
  nodes: [
    { name: 'n2', url: 'http://127.0.0.1:8082', admin: 'http://127.0.0.1:9092', state: 'down', ready: true, routed: false, sockets: 0, since: 5, detail: 'its route closed while its heartbeats were flowing' },
    { name: 'n1', url: 'http://127.0.0.1:8081', admin: 'http://127.0.0.1:9091', state: 'ready', ready: true, routed: true, sockets: 3, since: 1 },
    { name: 'n3', url: 'http://127.0.0.1:8083', admin: 'http://127.0.0.1:9093', state: 'ready', ready: true, routed: true, sockets: 1, since: 1 },
  ],
  rooms: [
    { room: 'arena', owner: 'n3', epoch: 2, players: null, online: null },
    { room: 'lobby', owner: 'n3', epoch: 5, players: 4, online: 3 },
    { room: 'ghost', owner: 'n9', epoch: 1, players: null, online: null },
  ],
  rooms_total: 3,
  leaders: { meta: 'n1', KV_owners: 'n1', KV_snapshots: 'n3', INPUTS: '', KV_nodes: 'n1' },
};

let seq = 0;
function ev(over: Partial<Record<string, unknown>>): ViewEvent {
  seq++;
  return decodeEvent({ id: `b-${seq}`, seq, at: 1000 + seq, observer: 'n1', kind: 'lease', ...over });
}

group('decoding', () => {
  it('decodes a state, with unknown players as null and a missing leader as ""', () => {
    const st = decodeState(wireState);
    expect(st.node).toBe('n1');
    expect(st.roomsTotal).toBe(3);
    expect(st.nodes[0]).toEqual({
      name: 'n2', url: 'http://127.0.0.1:8082', admin: 'http://127.0.0.1:9092', state: 'down', ready: true, routed: false,
      sockets: 0, since: 5, detail: 'its route closed while its heartbeats were flowing',
    });
    expect(st.rooms[1]).toEqual({ room: 'lobby', owner: 'n3', epoch: 5, players: 4, online: 3 });
    expect(st.rooms[0]?.players).toBeNull();
    expect(st.leaders['INPUTS']).toBe('');
    expect(decodeState({ node: 'n1' })).toEqual({ node: 'n1', boot: '', nodes: [], rooms: [], roomsTotal: 0, leaders: {} });
    // An unknown state is shown as not ready rather than dropped.
    expect(decodeState({ node: 'n1', nodes: [{ name: 'x', state: 'weird' }] }).nodes[0]?.state).toBe('not_ready');
  });

  it('refuses malformed states', () => {
    expect(() => decodeState(null)).toThrow();
    expect(() => decodeState({ nodes: [] })).toThrow(/node/);
    expect(() => decodeState({ node: 'n1', nodes: {} })).toThrow(/array/);
    expect(() => decodeState({ node: 'n1', nodes: [{ state: 'ready' }] })).toThrow(/name/);
    expect(() => decodeState({ node: 'n1', rooms: [{ owner: 'n1' }] })).toThrow(/room/);
    expect(() => decodeState({ node: 'n1', leaders: [] })).toThrow(/leaders/);
  });

  it('decodes events and refuses unknown kinds', () => {
    const e = decodeEvent({ id: 'b-7', seq: 7, at: 99, observer: 'n1', kind: 'resumed', room: 'lobby', node: 'n3', from: 'n2', epoch: 5, from_epoch: 4, gap_ms: 812.345 });
    expect(e).toMatchObject({ id: 'b-7', seq: 7, kind: 'resumed', room: 'lobby', epoch: 5, fromEpoch: 4, gapMs: 812.345, how: '', to: '' });
    expect(decodeEvent({ id: 'b-8', kind: 'node', node: 'n2', from: 'ready', to: 'down' }).gapMs).toBeNull();
    expect(() => decodeEvent({ id: 'b-9', kind: 'gossip' })).toThrow(/kind/);
    expect(() => decodeEvent({ kind: 'lease' })).toThrow(/id/);
    expect(decodeHeartbeat({ at: 5, seq: 2 })).toEqual({ at: 5, seq: 2 });
  });
});

group('timeline', () => {
  it('shows the gap on the takeover it follows, newest first', () => {
    const tl = new Timeline();
    expect(tl.add(ev({ kind: 'node', node: 'n2', from: 'ready', to: 'down', at: 100 }))).toBe(true);
    expect(tl.add(ev({ how: 'stolen', room: 'lobby', node: 'n3', from: 'n2', epoch: 5, from_epoch: 4, at: 200 }))).toBe(true);
    expect(tl.add(ev({ kind: 'resumed', room: 'lobby', node: 'n3', from: 'n2', epoch: 5, from_epoch: 4, gap_ms: 812.345, at: 300 }))).toBe(true);
    const entries = tl.entries();
    expect(entries.map((t) => t.event.kind)).toEqual(['lease', 'node']); // the resumed event is the takeover's gap
    expect(entries[0]?.gapMs).toBe(812.345);
    expect(describe(entries[0]!)).toBe('lobby: taken over by n3 from n2 (epoch 4 → 5) · ticks paused 812.3 ms');
    // A gap whose lease change was not seen stands on its own.
    tl.add(ev({ kind: 'resumed', room: 'r1', epoch: 3, from_epoch: 2, gap_ms: 70, at: 400 }));
    expect(describe(tl.entries()[0]!)).toBe('r1: ticks resumed at epoch 3 after 70.0 ms');
  });

  it('keeps a lease change once whichever nodes saw it, and skips the new node\'s replay of what came before the move', () => {
    const tl = new Timeline();
    tl.add(ev({ observer: 'n2', kind: 'node', node: 'n3', from: '', to: 'ready', at: 50 }));
    tl.add(ev({ observer: 'n2', how: 'taken', room: 'lobby', node: 'n1', epoch: 1, at: 60 }));
    tl.saw(1000); // n2's heartbeats up to its death
    tl.connected(); // the page moved to n1, which replays its own history
    expect(tl.add(ev({ observer: 'n1', kind: 'node', node: 'n3', from: '', to: 'ready', at: 55 }))).toBe(false);
    expect(tl.add(ev({ observer: 'n1', how: 'taken', room: 'lobby', node: 'n1', epoch: 1, at: 61 }))).toBe(false);
    // What n1 saw after the move is news: n2's death and the takeover.
    expect(tl.add(ev({ observer: 'n1', kind: 'node', node: 'n2', from: 'ready', to: 'down', at: 1100 }))).toBe(true);
    expect(tl.add(ev({ observer: 'n1', how: 'stolen', room: 'lobby', node: 'n3', from: 'n1', epoch: 2, from_epoch: 1, at: 1200 }))).toBe(true);
    // The same event again (a reconnect replays after its last id, but a page may see one twice): once.
    const again = ev({ observer: 'n1', kind: 'leader', stream: 'KV_owners', from: 'n2', to: 'n3', at: 1300 });
    expect(tl.add(again)).toBe(true);
    expect(tl.add(again)).toBe(false);
    expect(tl.entries().map((t) => `${t.event.observer}:${t.event.kind}`)).toEqual(['n1:leader', 'n1:lease', 'n1:node', 'n2:lease', 'n2:node']);
  });

  it('orders by time and is bounded', () => {
    const tl = new Timeline(5);
    for (let i = 0; i < 12; i++) tl.add(ev({ how: 'taken', room: `r${i}`, node: 'n1', epoch: 1, at: 1000 + i }));
    tl.add(ev({ how: 'taken', room: 'late', node: 'n1', epoch: 1, at: 1005 })); // older than those kept: dropped at once
    expect(tl.size).toBe(5);
    expect(tl.entries().map((t) => t.event.room)).toEqual(['r11', 'r10', 'r9', 'r8', 'r7']);
    // A forgotten event can come back (it is no longer known).
    expect(tl.add(ev({ how: 'taken', room: 'r12', node: 'n1', epoch: 1, at: 1012 }))).toBe(true);
  });
});

group('words', () => {
  const t = (over: Partial<Record<string, unknown>>, gapMs: number | null = null) => describe({ event: ev(over), gapMs });
  it('says what happened', () => {
    expect(t({ how: 'taken', room: 'lobby', node: 'n1', epoch: 1 })).toBe('lobby: taken by n1 (epoch 1)');
    expect(t({ how: 'handoff', room: 'lobby', node: 'n3', from: 'n2', epoch: 5, from_epoch: 4 }, 120)).toBe(
      'lobby: handed off n2 → n3 (epoch 4 → 5) · ticks paused 120.0 ms',
    );
    expect(t({ how: 'reclaimed', room: 'lobby', node: 'n2', epoch: 6, from_epoch: 5 })).toBe('lobby: reclaimed by n2 (epoch 5 → 6)');
    expect(t({ how: 'released', room: 'lobby', node: 'n2', epoch: 4 })).toBe('lobby: released by n2 (epoch 4)');
    expect(t({ how: 'expired', room: 'r1', node: 'n2', epoch: 4 })).toBe('r1: lease of n2 expired (epoch 4)');
    expect(t({ kind: 'node', node: 'n2', from: '', to: 'ready' })).toBe('n2 joined');
    expect(t({ kind: 'node', node: 'n2', from: 'down', to: 'not_ready' })).toBe('n2 joined (not ready)');
    expect(t({ kind: 'node', node: 'n2', from: 'cut_off', to: 'ready' })).toBe('n2 reachable again');
    expect(t({ kind: 'node', node: 'n2', from: 'ready', to: 'cut_off', detail: 'it fell silent, then its route timed out' })).toBe(
      'n2 cut off (it fell silent, then its route timed out)',
    );
    expect(t({ kind: 'node', node: 'n2', from: 'draining', to: 'left' })).toBe('n2 left');
    expect(t({ kind: 'leader', stream: 'KV_owners', from: 'n2', to: 'n3' })).toBe('owners (KV_owners) leader moved n2 → n3');
    expect(t({ kind: 'leader', stream: 'meta', from: 'n2', to: '' })).toBe('JetStream meta lost its leader (was n2)');
    expect(t({ kind: 'leader', stream: 'INPUTS', from: '', to: 'n1' })).toBe('INPUTS leader: n1');
  });

  it('formats gaps and chips', () => {
    expect(formatGap(812.345)).toBe('812.3 ms');
    expect(formatGap(12345)).toBe('12.35 s');
    expect(chipLabel({ room: 'lobby', epoch: 5, players: 4, online: 3 })).toBe('lobby · e5 · 4 players (3 online)');
    expect(chipLabel({ room: 'lobby', epoch: 5, players: 1, online: 1 })).toBe('lobby · e5 · 1 player');
    expect(chipLabel({ room: 'r1', epoch: 2, players: null, online: null, owner: 'n9' })).toBe('r1 · e2 · n9');
  });
});

group('layout', () => {
  const st: ViewState = decodeState(wireState);

  it('draws every node as a box with the rooms it owns (the lobby first) and the streams it leads', () => {
    const l = layout(st, { ...DEFAULT_LAYOUT, width: 1000 });
    expect(l.boxes.map((b) => [b.name, b.state, b.answering])).toEqual([
      ['n1', 'ready', true],
      ['n2', 'down', false],
      ['n3', 'ready', false],
    ]);
    const [n1, n2, n3] = l.boxes;
    expect(n1?.leads).toEqual(['meta', 'owners', 'nodes']);
    expect(n3?.leads).toEqual(['snapshots']);
    expect(n3?.rooms.map((r) => r.room)).toEqual(['lobby', 'arena']);
    expect(n2?.rooms).toEqual([]);
    expect(n2?.detail).toMatch(/route closed/);
    // One row of four (three nodes and the rooms owned elsewhere), each box beside the last.
    expect(l.elsewhere?.rooms.map((r) => r.room)).toEqual(['ghost']);
    expect([n1?.x, n2?.x, n3?.x, l.elsewhere?.x]).toEqual([16, 252, 488, 724]);
    expect(new Set(l.boxes.map((b) => b.y))).toEqual(new Set([16]));
    // A box is as tall as its chips; the picture as tall as its tallest row.
    expect(n3!.h).toBeGreaterThan(n1!.h);
    expect(l.height).toBe(16 + n3!.h + 16);
    // Chips sit inside their box.
    for (const c of n3!.rooms) expect(c.y + c.h).toBeLessThanOrEqual(n3!.h);
  });

  it('wraps rows on a narrow page and bounds the chips drawn per box', () => {
    const many: ViewState = {
      ...st,
      rooms: Array.from({ length: 12 }, (_, i) => ({ room: `r${String(i).padStart(2, '0')}`, owner: 'n1', epoch: 1, players: null, online: null })),
    };
    const l = layout(many, { ...DEFAULT_LAYOUT, width: 500 });
    expect(l.boxes.map((b) => [b.x, b.y > 16])).toEqual([
      [16, false],
      [252, false],
      [16, true],
    ]);
    expect(l.boxes[0]?.rooms.length).toBe(DEFAULT_LAYOUT.maxChips);
    expect(l.boxes[0]?.more).toBe(4);
    expect(l.boxes[2]!.y).toBe(16 + l.boxes[0]!.h + 16);
    expect(l.elsewhere).toBeNull();
  });
});
