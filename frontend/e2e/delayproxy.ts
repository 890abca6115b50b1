// A TCP proxy that delays every chunk by a fixed time in each direction, for
// the netcode specs: the page is loaded through it (HTTP and the WebSocket
// both), so the page and the node are delayMs apart each way without touching
// the node. Order is kept (every chunk waits the same time, and timers with
// the same delay fire in order); flow control is not modelled (a test moves
// kilobytes per second).

import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  /** The port on 127.0.0.1 to connect to instead of the target. */
  readonly port: number;
  /** Changes the delay for chunks read from now on (ms, each way). */
  setDelay(ms: number): void;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

export async function startDelayProxy(targetPort: number, delayMs: number): Promise<DelayProxy> {
  let delay = delayMs;
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();

  // Forwards src -> dst, each chunk after `delay` ms; an end or error is passed on after the data before it.
  const pipe = (src: Socket, dst: Socket) => {
    const later = (fn: () => void) => {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, delay);
      timers.add(t);
    };
    src.on('data', (chunk: Buffer) => later(() => dst.destroyed || dst.write(chunk)));
    src.on('end', () => later(() => dst.destroyed || dst.end()));
    src.on('error', () => later(() => dst.destroy()));
    src.on('close', () => later(() => dst.destroy()));
  };

  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    setDelay(ms: number) {
      delay = ms;
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
