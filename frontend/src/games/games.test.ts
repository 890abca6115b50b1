import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkClientMessage, decodeServerMessage, keysToMask, type Keys, type TickMessage, type WelcomeMessage } from '../protocol';
import { createArenaPredictor, type ArenaPlayer } from '../predict/arena';
import { arenaModule, arenaParams, arenaPlayer } from './arena';
import { collectModule, scores, secondsLeft, targetPayload, validTarget } from './collect';
import { Registry, watchOnly, worldOf, type GameModule, type PredictorHook, type Prediction } from './registry';

// Shared with the Go side: the games' payload fixtures (games/arena and games/collect test the same files).
const FAKE_CLOCK = { tickAt: () => 0, tickMs: 50, generation: 0, lateTicks: 0, lagTicks: 0 };

const FIXTURES = fileURLToPath(new URL('../../../pkg/protocol/testdata/fixtures/', import.meta.url));

interface PayloadFixtures {
  game: string;
  valid: ({ payload: string } & Record<string, unknown>)[];
  invalid: string[];
}

function payloads(game: string): PayloadFixtures {
  return JSON.parse(readFileSync(`${FIXTURES}games/${game}.json`, 'utf8')) as PayloadFixtures;
}

function server<T>(file: string): T {
  return decodeServerMessage(readFileSync(`${FIXTURES}server/${file}`, 'utf8')) as T;
}

describe('registry', () => {
  const reg = new Registry([arenaModule(), collectModule]);

  it('finds a module by the name in welcome.game, and watches a game it does not know', () => {
    expect(reg.get('arena').name).toBe('arena');
    expect(reg.get('collect').name).toBe('collect');
    expect(reg.get('chess')).toBe(watchOnly);
    expect(reg.names).toEqual(['arena', 'collect']);
  });

  it('refuses a module registered twice', () => {
    expect(() => reg.add(collectModule)).toThrow(/twice/);
  });

  it('has the game named in each welcome fixture', () => {
    for (const f of ['welcome_arena.json', 'welcome_collect.json']) {
      const w = server<WelcomeMessage>(f);
      expect(reg.has(w.game), f).toBe(true);
    }
  });
});

describe('arena', () => {
  it('sends each fixture payload as the keys it stands for, and no invalid one', () => {
    const fx = payloads('arena');
    for (const v of fx.valid) {
      const keys = { up: false, down: false, left: false, right: false, ...(JSON.parse(v.payload) as Partial<Keys>) };
      expect(keysToMask(keys), v.payload).toBe(v['keys']);
      expect(checkClientMessage({ type: 'input', seq: 1, keys }), v.payload).toBeNull();
    }
    for (const text of fx.invalid) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        continue; // not JSON: never produced
      }
      // Refused by the client's own check, or not what JSON.stringify writes (duplicate members, padding).
      if (checkClientMessage({ type: 'input', seq: 1, keys: parsed }) === null) expect(JSON.stringify(parsed), text).not.toBe(text);
    }
  });

  it('reads the players of a tick and its parameters from welcome', () => {
    const t = server<TickMessage>('tick.json');
    expect(arenaPlayer(t.players[0]!)).toEqual({ x: 10, y: 20.5, vx: 0, vy: 10, keys: 2 });
    expect(worldOf(t)).toEqual({ width: 1000, height: 1000 });
    expect(arenaParams(server<WelcomeMessage>('welcome_arena.json').params)).toEqual({ width: 1000, height: 1000, speed: 10, tickRate: 20 });
    expect(arenaParams({})).toEqual({ width: 1000, height: 1000, speed: 10, tickRate: 20 });
    // A member that is not a positive number is a server's mistake: the default stands, the welcome is not refused.
    const w = decodeServerMessage('{"type":"welcome","protocol":1,"player":"p1","resume":"t","game":"arena","params":{"speed":"10","tick_rate":-5,"width":0,"height":800}}') as WelcomeMessage;
    expect(arenaParams(w.params)).toEqual({ width: 1000, height: 800, speed: 10, tickRate: 20 });
  });

  it('takes a predictor as an option, in the hook shape', () => {
    const calls: string[] = [];
    const hook: PredictorHook<{ x: number }, number> = {
      ready: true,
      x: 1,
      y: 2,
      stats: { leadTicks: 1, leadSamples: 0, pending: 0, overflow: 0, lastError: 0, maxError: 0, corrections: 0, snaps: 0, stalledFrames: 0, displayError: 0 },
      link: () => calls.push('link'),
      clear: () => calls.push('clear'),
      reset: () => calls.push('reset'),
      join: (seq) => calls.push(`join ${seq}`),
      input: (seq, i) => calls.push(`input ${seq} ${i}`),
      reconcile: (s, tick) => calls.push(`reconcile ${s.x} ${tick}`),
      frame: () => calls.push('frame'),
    };
    const m: GameModule = arenaModule({ predictor: () => hook as unknown as PredictorHook<ArenaPlayer, number> });
    const g = m.create({}, FAKE_CLOCK);
    const pr = g.prediction as Prediction;
    expect(pr).toBeDefined();
    const t = server<TickMessage>('tick.json');
    pr.hook.reconcile(pr.serverState(t, t.players[0]!), t.seq, 0);
    pr.hook.input(7, pr.input({ keys: { up: true, down: false, left: false, right: true } }), 0);
    expect(calls).toEqual(['reconcile 10 1234', 'input 7 9']);
    expect(arenaModule().create({}, FAKE_CLOCK).prediction).toBeUndefined();
  });

  it('plugs in the arena predictor (predict/arena.ts) as its hook', () => {
    const g = arenaModule({ predictor: (p, c) => createArenaPredictor(p, c) }).create(server<WelcomeMessage>('welcome_arena.json').params, FAKE_CLOCK);
    const pr = g.prediction as Prediction;
    const t = server<TickMessage>('tick_empty.json');
    const me = { id: 'p1', name: 'a', ack: 3, conn: 1, online: true, away: 0, f: { x: 100, y: 200, vx: 0, vy: 0, keys: 0 } };
    t.players.push(me);
    g.onTick(t, 'p1');
    expect(pr.hook.ready).toBe(false);
    pr.hook.reconcile(pr.serverState(t, me), t.seq, 0);
    pr.hook.frame(0);
    expect(pr.hook.ready).toBe(true);
    expect([pr.hook.x, pr.hook.y]).toEqual([100, 200]);
  });
});

describe('collect', () => {
  it('accepts the fixtures valid payloads and refuses the invalid ones, as the server does', () => {
    const fx = payloads('collect');
    for (const v of fx.valid) {
      const parsed = JSON.parse(v.payload) as Record<string, unknown>;
      expect(validTarget(parsed, 1000, 1000), v.payload).toBe(true);
      expect(parsed).toEqual({ x: v['x'], y: v['y'] });
    }
    for (const text of fx.invalid) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        continue;
      }
      if (validTarget(parsed, 1000, 1000)) expect(JSON.stringify(parsed), text).not.toBe(text); // duplicates, padding
    }
  });

  it('makes a valid payload of any point, inside the field or not', () => {
    for (let i = 0; i < 1000; i++) {
      const p = { x: (Math.random() - 0.25) * 2000, y: (Math.random() - 0.25) * 1600 };
      const t = targetPayload(p, 1000, 800);
      expect(validTarget(t, 1000, 800), JSON.stringify(p)).toBe(true);
      expect(checkClientMessage({ type: 'input', seq: 1, data: t })).toBeNull();
    }
  });

  it('reads scores, the round and pickups from a tick', () => {
    const t = server<TickMessage>('tick_collect.json');
    const s = scores(t);
    expect(s.map((x) => [x.name, x.score, x.online])).toEqual([
      ['alice', 3, true],
      ['bob & <eve>', 0, false],
    ]);
    expect(t.g['round']).toBe(1);
    expect(secondsLeft(t, 20)).toBe(52.5);
    expect(t.objects['pickups']).toHaveLength(12);
    expect(t.objects['pickups']!.at(-1)).toEqual({ id: 1164, f: { x: 514, y: 106, value: 3 } });
  });

  it('reports its state for tests', () => {
    const g = collectModule.create(server<WelcomeMessage>('welcome_collect.json').params, FAKE_CLOCK);
    const t = server<TickMessage>('tick_collect.json');
    g.onTick(t, 'p3f9a1c0d2b4e6f81');
    const d = g.debug();
    expect(d['score']).toBe(3);
    expect(d['round']).toBe(1);
    expect((d['pickups'] as unknown[]).length).toBe(12);
    expect(g.current()).toBeNull();
  });
});
