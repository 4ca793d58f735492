import { Cluster, Redis, type ClusterOptions } from "ioredis";
import { AppError } from "./app-error";
import { defineLuaCommands } from "./lua";

export type { Cluster, Redis };

/**
 * The service's Redis client: one server (`Redis`) or a Redis Cluster
 * (`Cluster`). Both speak the same commands (the Lua commands of ./lua.ts
 * included) and both report `status === "ready"` when usable; what differs —
 * subscribing, visiting every master, the node a keyless command lands on —
 * goes through the helpers below.
 */
export type RedisClient = Redis | Cluster;

export type RedisOptions = {
  url: string;
  /** `host:port` seeds of a Redis Cluster; when given, `url` is ignored. */
  clusterNodes?: readonly string[] | undefined;
  /** Prepended to every key by ioredis (Lua KEYS included); not to pub/sub channels. */
  keyPrefix: string;
  commandTimeoutMs: number;
};

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * A Redis client that fails fast: a command gets one try, a bounded time, and
 * is refused at once while the connection is down (no offline queue), so a
 * Redis outage turns into typed errors or the degraded path, never a hang.
 */
export function createRedis(opts: RedisOptions & { name?: string }): RedisClient {
  const client = opts.clusterNodes && opts.clusterNodes.length > 0 ? createCluster(opts, opts.clusterNodes) : createSingle(opts);
  defineLuaCommands(client);
  // Errors surface on the commands that hit them; the event would otherwise
  // crash the process as an unhandled 'error'.
  client.on("error", () => {});
  return client;
}

function createSingle(opts: RedisOptions & { name?: string }): Redis {
  return new Redis(opts.url, {
    keyPrefix: opts.keyPrefix,
    connectionName: opts.name ?? "flashpoints",
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.max(1000, opts.commandTimeoutMs * 2),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(100 * times, 1000),
    reconnectOnError: () => false,
    // Commands issued in the same tick (the calls of one request, of a batch)
    // leave in one write.
    enableAutoPipelining: true,
  });
}

/** `host:port` → ioredis' node form (IPv6 hosts may be written `[::1]:7000`). */
export function parseNode(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(":");
  return { host: node.slice(0, at).replace(/^\[(.*)\]$/, "$1"), port: Number(node.slice(at + 1)) };
}

/**
 * The same fail-fast rules on a Redis Cluster. Commands, connections and the
 * per-node clients keep the single-server limits; what a cluster adds is its
 * own retrying — after MOVED/ASK (resharding), TRYAGAIN, CLUSTERDOWN or a
 * node's connection closing, ioredis refreshes the slot map and tries again,
 * by default up to 16 times 100 ms apart. Here a few tries fit in about one
 * command timeout, then the command fails and is mapped like any outage
 * (`isRedisUnavailable`): a dead master turns into fast errors on its slots.
 */
export function clusterOptions(opts: RedisOptions & { name?: string }): ClusterOptions {
  const retryDelay = Math.max(10, Math.min(100, Math.floor(opts.commandTimeoutMs / 5)));
  return {
    keyPrefix: opts.keyPrefix,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    enableAutoPipelining: true,
    clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
    maxRedirections: 5,
    retryDelayOnFailover: retryDelay,
    retryDelayOnClusterDown: retryDelay,
    retryDelayOnTryAgain: retryDelay,
    slotsRefreshTimeout: Math.max(1000, opts.commandTimeoutMs * 2),
    redisOptions: {
      connectionName: opts.name ?? "flashpoints",
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: Math.max(1000, opts.commandTimeoutMs * 2),
      maxRetriesPerRequest: 1,
      enableReadyCheck: true,
      reconnectOnError: () => false,
    },
  };
}

function createCluster(opts: RedisOptions & { name?: string }, nodes: readonly string[]): Cluster {
  return new Cluster(nodes.map(parseNode), clusterOptions(opts));
}

/**
 * A second connection for SUBSCRIBE (a subscribed connection can do nothing
 * else). It queues while reconnecting: it only listens. On a cluster, PUBLISH
 * reaches every node, so a subscriber on any one node hears every message.
 */
export function createSubscriber(client: RedisClient, name: string): RedisClient {
  const sub = isCluster(client)
    ? client.duplicate([], { enableOfflineQueue: true, redisOptions: { ...client.options.redisOptions, connectionName: name } })
    : client.duplicate({ connectionName: name, enableOfflineQueue: true, lazyConnect: false });
  sub.on("error", () => {});
  return sub;
}

/**
 * The server connections to visit for commands that act on one server's
 * keyspace (SCAN, KEYS, FLUSH…): the client itself, or every master of a
 * cluster (from the current slot map; these connections carry no key prefix).
 */
export function masters(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes("master") : [client];
}

/**
 * Deletes every key that starts with `prefix` (SCAN + UNLINK on every master;
 * never FLUSHALL a shared Redis). `client` must have no key prefix of its own.
 * On a cluster one UNLINK may not span slots, so keys go one by one
 * (pipelined).
 */
export async function deleteByPrefix(client: RedisClient, prefix: string): Promise<number> {
  const match = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
  const cluster = isCluster(client);
  let n = 0;
  for (const node of masters(client)) {
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", match, "COUNT", 1000);
      cursor = next;
      if (keys.length === 0) continue;
      if (!cluster) {
        n += await node.unlink(...keys);
        continue;
      }
      const replies = await Promise.all(keys.map((k) => node.unlink(k)));
      n += replies.reduce((a, b) => a + b, 0);
    } while (cursor !== "0");
  }
  return n;
}

/**
 * Whether Redis answers: PING; on a cluster, PING to the master of every slot
 * in the slot map. A dead master makes its share of the keys unusable even
 * while the others answer — and ioredis drops its connection from the pool,
 * so the slot map (which still names it) is what shows it missing.
 */
export async function pingRedis(client: RedisClient): Promise<void> {
  if (!isCluster(client)) {
    await client.ping();
    return;
  }
  if (client.status !== "ready") throw new Error(`redis cluster status ${client.status}`);
  const owners = new Set<string>();
  for (const nodes of client.slots) if (nodes?.[0]) owners.add(nodes[0]);
  if (owners.size === 0) throw new Error("the redis cluster serves no slot");
  const connected = new Map(client.nodes("master").map((n) => [`${n.options.host}:${n.options.port}`, n]));
  await Promise.all(
    [...owners].map(async (key) => {
      const node = connected.get(key);
      if (!node) throw new Error(`no connection to the redis cluster master ${key}`);
      await node.ping();
    }),
  );
}

/** Resolves when the client is ready, or after `timeoutMs` (the caller decides whether that is fatal). */
export function waitForRedis(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === "ready") return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      client.off("ready", onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    client.once("ready", onReady);
  });
}

/** Quits gracefully (pending replies arrive), or drops the connections if that fails. */
export async function closeRedis(client: RedisClient): Promise<void> {
  await client.quit().catch(() => client.disconnect());
}

// Single server: connection and timeout errors. Cluster (ioredis' own
// messages and the server's): no node reachable, slot map unrefreshable,
// cluster not ready, retries used up after MOVED/TRYAGAIN/CLUSTERDOWN or a
// closed node, and a cluster that lost coverage (CLUSTERDOWN) or a master
// (MASTERDOWN). Not CROSSSLOT: that is a bug in the keys, not an outage.
// A MOVED or ASK that reaches the caller is one the cluster client could not
// follow (its target is down, or the slot map is changing): not an answer.
const UNAVAILABLE =
  /^(MOVED|ASK) \d+ |Command timed out|Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Reached the max retries|EPIPE|LOADING|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|Cluster isn't ready|Cluster is ended|No subscriber for the cluster/i;

export function isRedisUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return UNAVAILABLE.test(e.message);
}

export function redisUnavailable(cause: unknown): AppError {
  return new AppError("UNAVAILABLE", "the cache is unavailable; retry shortly", { retryAfterMs: 500, cause });
}
