// A real 3-node Tickmesh cluster for the e2e specs.
//
// The cluster-setup project (cluster.setup.ts) calls startCluster(); the specs
// use nodeUrl/adminUrl/killNode/startNode/ownerOf/settledOwner; the cluster-teardown project
// calls stopCluster(). The processes outlive the Playwright worker that started
// them (they are detached), so the state (ports, pids, paths, the cluster's
// credentials) is kept in a JSON file that every worker reads.
//
// The nodes start as in production, with credentials drawn for the run (route
// user and password, SESSION_SECRET), never with the development switch.
//
// The node binary comes from $TICKMESH_BIN, or is built with
// `go build -o <tmp>/tickmesh-node ./cmd/node` from the repository root. It
// must embed the built frontend (frontend.Handler at /), so the frontend is
// built first when dist/app is missing.

import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FRONTEND_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = resolve(FRONTEND_DIR, '..');
// One state file per checkout: runs in two checkouts on one machine (git worktrees) must not stop or kill each
// other's nodes as stale.
const STATE_FILE = join(tmpdir(), 'tickmesh-e2e', createHash('sha256').update(REPO_DIR).digest('hex').slice(0, 16), 'cluster.json');
export const NODE_NAMES = ['n1', 'n2', 'n3'] as const;
export type NodeName = (typeof NODE_NAMES)[number];

const READY_TIMEOUT_MS = 60_000;
const TERM_GRACE_MS = 10_000;

interface NodeState {
  name: NodeName;
  http: number;
  /** Admin listener: /api/cluster, /metrics, /cluster.html. */
  admin: number;
  nats: number;
  cluster: number;
  dataDir: string;
  log: string;
  pid: number | null;
}

interface ClusterState {
  bin: string;
  root: string;
  /** Environment variables holding the cluster's credentials. */
  secrets: Record<string, string>;
  nodes: Record<NodeName, NodeState>;
}

export interface ClusterInfo {
  node: string;
  nodes: { name: string; url: string; admin: string; ready: boolean; sockets: number }[];
  rooms: { room: string; owner: string; epoch: number }[];
}

// ---------------------------------------------------------------------------
// State file

function loadState(): ClusterState {
  if (!existsSync(STATE_FILE)) throw new Error(`no cluster state at ${STATE_FILE}: did the cluster-setup project run?`);
  return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as ClusterState;
}

function saveState(s: ClusterState): void {
  mkdirSync(dirname(STATE_FILE), { recursive: true });
  writeFileSync(STATE_FILE, JSON.stringify(s, null, 2));
}

// ---------------------------------------------------------------------------
// Processes

/** True while pid is a live (not zombie) process. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": the state follows the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** True when pid is still the node we started (pids get reused). */
function isOurs(pid: number, bin: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === bin && alive(pid);
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig); // the whole process group (spawned detached)
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitExit(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await sleep(50);
  }
  return !alive(pid);
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((res, rej) => {
      const s = createServer();
      s.once('error', rej);
      s.listen(0, '127.0.0.1', () => res(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function nodeArgs(s: ClusterState, name: NodeName): string[] {
  const me = s.nodes[name];
  const routes = NODE_NAMES.filter((n) => n !== name).map((n) => `127.0.0.1:${s.nodes[n].cluster}`);
  return [
    '-name', name,
    '-http', `127.0.0.1:${me.http}`,
    '-admin-http', `127.0.0.1:${me.admin}`,
    '-nats', `127.0.0.1:${me.nats}`,
    '-cluster', `127.0.0.1:${me.cluster}`,
    '-routes', routes.join(','),
    '-data', me.dataDir,
    '-public-url', `http://127.0.0.1:${me.http}`,
  ];
}

function logTail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function spawnNode(s: ClusterState, name: NodeName): void {
  const me = s.nodes[name];
  mkdirSync(me.dataDir, { recursive: true });
  const fd = openSync(me.log, 'a');
  try {
    // Nothing of this process's environment that would change the node's settings; then the credentials.
    const env: Record<string, string> = {};
    for (const k of ['PATH', 'HOME', 'TMPDIR', 'TZ', 'GOMAXPROCS', 'GOGC']) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    const child = spawn(s.bin, nodeArgs(s, name), {
      detached: true,
      stdio: ['ignore', fd, fd],
      cwd: s.root,
      env: { ...env, ...s.secrets },
    });
    if (child.pid === undefined) throw new Error(`cannot start ${s.bin}`);
    child.unref();
    me.pid = child.pid;
  } finally {
    closeSync(fd);
  }
}

async function waitReady(s: ClusterState, name: NodeName, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const me = s.nodes[name];
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    if (me.pid === null || !alive(me.pid)) {
      throw new Error(`node ${name} exited before it was ready; log ${me.log}:\n${logTail(me.log)}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${me.http}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`node ${name} not ready after ${timeoutMs} ms (${last}); log ${me.log}:\n${logTail(me.log)}`);
}

// ---------------------------------------------------------------------------
// Setup and teardown

function ensureFrontendBuilt(): void {
  if (existsSync(join(FRONTEND_DIR, 'dist', 'app', 'index.html'))) return;
  execFileSync(join(FRONTEND_DIR, 'node_modules', '.bin', 'vite'), ['build'], { cwd: FRONTEND_DIR, stdio: 'inherit' });
}

function nodeBinary(root: string): string {
  const env = process.env['TICKMESH_BIN'];
  if (env !== undefined && env !== '') {
    const bin = resolve(env);
    if (!existsSync(bin)) throw new Error(`TICKMESH_BIN=${env} does not exist`);
    return bin;
  }
  const bin = join(root, 'tickmesh-node');
  execFileSync('go', ['build', '-o', bin, './cmd/node'], { cwd: REPO_DIR, stdio: 'inherit' });
  return bin;
}

/** Kills nodes left over by an interrupted earlier run. */
async function killStale(): Promise<void> {
  if (!existsSync(STATE_FILE)) return;
  try {
    const old = loadState();
    for (const n of NODE_NAMES) {
      const pid = old.nodes[n]?.pid;
      if (pid && isOurs(pid, old.bin)) {
        signal(pid, 'SIGKILL');
        await waitExit(pid, 5000);
      }
    }
  } catch {
    /* unreadable: ignore */
  }
  rmSync(STATE_FILE, { force: true });
}

export async function startCluster(): Promise<void> {
  await killStale();
  ensureFrontendBuilt();
  const root = mkdtempSync(join(tmpdir(), 'tickmesh-e2e-'));
  const bin = nodeBinary(root);
  const ports = await freePorts(NODE_NAMES.length * 4);
  const nodes = {} as Record<NodeName, NodeState>;
  NODE_NAMES.forEach((name, i) => {
    nodes[name] = {
      name,
      http: ports[i * 4] as number,
      nats: ports[i * 4 + 1] as number,
      cluster: ports[i * 4 + 2] as number,
      admin: ports[i * 4 + 3] as number,
      dataDir: join(root, name),
      log: join(root, `${name}.log`),
      pid: null,
    };
  });
  const secret = () => randomBytes(32).toString('hex');
  const secrets = { CLUSTER_USER: 'tickmesh-e2e', CLUSTER_PASSWORD: secret(), SESSION_SECRET: secret() };
  const s: ClusterState = { bin, root, secrets, nodes };
  for (const n of NODE_NAMES) spawnNode(s, n);
  saveState(s);
  try {
    await Promise.all(NODE_NAMES.map((n) => waitReady(s, n)));
  } catch (e) {
    await stopCluster();
    throw e;
  }
  // The node must serve the built game page.
  const page = await (await fetch(`http://127.0.0.1:${s.nodes.n1.http}/`)).text();
  if (!page.includes('id="game"')) {
    await stopCluster();
    throw new Error(
      'node n1 does not serve the built game page at /: build the frontend (npm run build) before the node binary, ' +
        'and make sure the node mounts frontend.Handler() at /',
    );
  }
}

/** SIGTERM every node, SIGKILL after 10 s; keeps the logs in test-results/cluster-logs. */
export async function stopCluster(): Promise<void> {
  if (!existsSync(STATE_FILE)) return;
  const s = loadState();
  const pids = NODE_NAMES.map((n) => s.nodes[n].pid).filter((p): p is number => p !== null && isOurs(p, s.bin));
  for (const pid of pids) signal(pid, 'SIGTERM');
  await Promise.all(
    pids.map(async (pid) => {
      if (!(await waitExit(pid, TERM_GRACE_MS))) {
        signal(pid, 'SIGKILL');
        await waitExit(pid, 5000);
      }
    }),
  );
  const logs = join(FRONTEND_DIR, 'test-results', 'cluster-logs');
  mkdirSync(logs, { recursive: true });
  for (const n of NODE_NAMES) {
    if (existsSync(s.nodes[n].log)) cpSync(s.nodes[n].log, join(logs, `${n}.log`));
  }
  rmSync(s.root, { recursive: true, force: true });
  rmSync(STATE_FILE, { force: true });
}

// ---------------------------------------------------------------------------
// Helpers for the specs

/** The node's HTTP base URL, e.g. http://127.0.0.1:40123 */
export function nodeUrl(name: NodeName): string {
  return `http://127.0.0.1:${loadState().nodes[name].http}`;
}

/** The base URL of the node's admin listener (/api/cluster, /cluster.html). */
export function adminUrl(name: NodeName): string {
  return `http://127.0.0.1:${loadState().nodes[name].admin}`;
}

export function isNodeName(name: string): name is NodeName {
  return (NODE_NAMES as readonly string[]).includes(name);
}

/** Names of the nodes whose processes are running. */
export function liveNodes(): NodeName[] {
  const s = loadState();
  return NODE_NAMES.filter((n) => {
    const pid = s.nodes[n].pid;
    return pid !== null && alive(pid);
  });
}

/** SIGKILLs a node and waits until the process is gone. */
export async function killNode(name: NodeName): Promise<void> {
  const s = loadState();
  const pid = s.nodes[name].pid;
  if (pid === null || !alive(pid)) return;
  signal(pid, 'SIGKILL');
  if (!(await waitExit(pid, 10_000))) throw new Error(`node ${name} (pid ${pid}) survived SIGKILL`);
  s.nodes[name].pid = null;
  saveState(s);
}

/** Starts a node again (same ports and data dir) and waits until /readyz is 200. */
export async function startNode(name: NodeName): Promise<void> {
  const s = loadState();
  const pid = s.nodes[name].pid;
  if (pid !== null && alive(pid)) return;
  spawnNode(s, name);
  saveState(s);
  await waitReady(s, name);
}

/** Makes sure all three nodes are running and ready. */
export async function ensureAllNodes(): Promise<void> {
  for (const n of NODE_NAMES) await startNode(n);
}

/** GET /api/cluster from the first live node that answers. */
export async function clusterInfo(): Promise<ClusterInfo> {
  const errors: string[] = [];
  for (const n of liveNodes()) {
    try {
      const res = await fetch(`${adminUrl(n)}/api/cluster`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return (await res.json()) as ClusterInfo;
      errors.push(`${n}: HTTP ${res.status}`);
    } catch (e) {
      errors.push(`${n}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no node answered /api/cluster (${errors.join('; ')})`);
}

/** The owner and epoch of a room according to /api/cluster, or null. */
export async function ownerOf(room: string): Promise<{ owner: string; epoch: number } | null> {
  const info = await clusterInfo();
  const r = info.rooms.find((x) => x.room === room);
  return r === undefined || r.owner === '' ? null : { owner: r.owner, epoch: r.epoch };
}

/**
 * The owner a page's ticks name (read by ownerSeen) once it has stayed the same for settleMs, if that is a node
 * other than notOn; null when it did not within timeoutMs. A node that a previous test restarted takes rooms by
 * handoff (balance) for a while after it is ready, onto the page's node even: a test that kills the owner, or
 * the page's node only, must know which node owns the room at the kill.
 */
export async function settledOwner(ownerSeen: () => Promise<string>, notOn: NodeName, settleMs = 2000, timeoutMs = 10_000): Promise<NodeName | null> {
  let owner = await ownerSeen();
  let since = Date.now();
  const end = since + timeoutMs;
  while (Date.now() - since < settleMs) {
    if (Date.now() >= end) return null;
    await sleep(250);
    const now = await ownerSeen();
    if (now !== owner) {
      owner = now;
      since = Date.now();
    }
  }
  return isNodeName(owner) && owner !== notOn ? owner : null;
}
