import { describe, expect, it } from 'vitest';
import { ClusterSources, clusterUrl, decodeCluster, eventsUrl, whyFailed } from './cluster';
import { fitArena } from './render';

describe('cluster view', () => {
  it('decodes /api/cluster', () => {
    const info = decodeCluster({
      node: 'n1',
      nodes: [{ name: 'n1', url: 'http://127.0.0.1:8081', admin: 'http://127.0.0.1:9091', ready: true, sockets: 3 }],
      rooms: [{ room: 'lobby', owner: 'n2', epoch: 4 }],
    });
    expect(info.nodes[0]).toEqual({ name: 'n1', url: 'http://127.0.0.1:8081', admin: 'http://127.0.0.1:9091', ready: true, sockets: 3 });
    expect(info.rooms[0]).toEqual({ room: 'lobby', owner: 'n2', epoch: 4 });
    expect(decodeCluster({ node: 'n1' })).toEqual({ node: 'n1', nodes: [], rooms: [] });
    expect(() => decodeCluster({ nodes: 5 })).toThrow();
  });

  it("falls back from the origin to the other known nodes' admin listeners", () => {
    const s = new ClusterSources('');
    expect(clusterUrl(s.current())).toBe('/api/cluster');
    s.learn([
      { name: 'n1', url: 'http://127.0.0.1:8081', admin: 'http://127.0.0.1:9091', ready: true, sockets: 0 },
      { name: 'n2', url: 'http://127.0.0.1:8082', admin: 'http://127.0.0.1:9092/', ready: true, sockets: 0 },
      { name: 'n2', url: 'http://127.0.0.1:8082', admin: 'http://127.0.0.1:9092', ready: true, sockets: 0 },
      { name: 'x', url: 'http://127.0.0.1:8084', admin: 'ws://nope', ready: true, sockets: 0 },
      { name: 'old', url: 'http://127.0.0.1:8085', admin: '', ready: true, sockets: 0 },
    ]);
    expect(s.all()).toEqual(['', 'http://127.0.0.1:9091', 'http://127.0.0.1:9092']);
    expect(clusterUrl(s.advance())).toBe('http://127.0.0.1:9091/api/cluster');
    expect(s.advance()).toBe('http://127.0.0.1:9092');
    expect(s.advance()).toBe('');
  });

  it("leaves the page's own origin out of the learned list, and builds the stream's URL", () => {
    const s = new ClusterSources('', 'http://127.0.0.1:9091');
    s.learn([
      { name: 'n1', url: 'http://127.0.0.1:8081', admin: 'http://127.0.0.1:9091', ready: true, sockets: 0 },
      { name: 'n2', url: 'http://127.0.0.1:8082', admin: 'http://127.0.0.1:9092', ready: true, sockets: 0 },
    ]);
    expect(s.all()).toEqual(['', 'http://127.0.0.1:9092']);
    expect(eventsUrl('')).toBe('/api/cluster/events');
    expect(eventsUrl('http://127.0.0.1:9092/', 'k1-7')).toBe('http://127.0.0.1:9092/api/cluster/events?since=k1-7');
  });

  it('names why a stream failed: the HTTP status, unreachable, or closed', async () => {
    const answer = (status: number) => (async () => new Response('', { status })) as typeof fetch;
    expect(await whyFailed('/api/cluster/events', answer(404))).toBe('HTTP 404');
    expect(await whyFailed('/api/cluster/events', answer(503))).toBe('HTTP 503');
    expect(await whyFailed('/api/cluster/events', answer(200))).toBe('closed');
    const refused = (async () => {
      throw new TypeError('Failed to fetch');
    }) as typeof fetch;
    expect(await whyFailed('/api/cluster/events', refused)).toBe('unreachable');
  });
});

describe('render', () => {
  it('fits the arena with a uniform scale, centred', () => {
    const v = fitArena(1048, 548, 1000, 1000, 24);
    expect(v.scale).toBeCloseTo(0.5);
    expect(v.oy).toBeCloseTo(24);
    expect(v.ox).toBeCloseTo((1048 - 500) / 2);
  });
});
