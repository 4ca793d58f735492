import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import pg from "pg";

/**
 * PostgreSQL servers of the local topology: a primary made with initdb and a
 * streaming replica cloned from it with pg_basebackup, each in its own data
 * directory on its own port, started and stopped with pg_ctl.
 */
export type PgServer = {
  role: "primary" | "replica";
  port: number;
  dataDir: string;
  /** The `postgres` database as the superuser. */
  adminUrl: string;
  start: () => void;
  /** `fast`: a clean shutdown; `immediate`: a crash. */
  stop: (mode?: "fast" | "immediate") => void;
  running: () => boolean;
};

export function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(path.join(root, v, "bin", "pg_ctl"))) return path.join(root, v, "bin");
  throw new Error("pg_ctl not found under /usr/lib/postgresql/<version>/bin: install the postgresql package");
}

/** PostgreSQL (and PgBouncer) refuse to run as root: as root, their tools run as the `postgres` user. */
export function asServiceUser(bin: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args];
}

function run(bin: string, args: string[]): string {
  const [cmd, argv] = asServiceUser(bin, args);
  try {
    return execFileSync(cmd, argv, { stdio: "pipe", timeout: 120_000, encoding: "utf8" });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${path.basename(bin)} ${args.join(" ")} failed: ${err.stderr || err.stdout || err.message}`);
  }
}

const SETTINGS: Record<PgServer["role"], string[]> = {
  // WAL kept for one streaming replica; connections enough for pooled clients and tests.
  primary: ["-c wal_level=replica", "-c max_wal_senders=4", "-c wal_keep_size=256MB", "-c max_connections=200"],
  replica: ["-c hot_standby=on", "-c max_connections=200", "-c hot_standby_feedback=on"],
};

/** The server of `role` whose data lives in `<dir>/pg-<role>` (made or not yet). */
export function pgServer(role: PgServer["role"], dir: string, port: number): PgServer {
  const bin = postgresBinDir();
  const dataDir = path.join(dir, `pg-${role}`);
  const socketDir = dir;
  const extra = SETTINGS[role];
  // fsync off: the topology is for this machine's tests and measurements; a
  // crash of a server still loses nothing it acknowledged to its clients.
  const options = [`-p ${port}`, "-c listen_addresses=127.0.0.1", `-c unix_socket_directories=${socketDir}`, "-c fsync=off", ...extra].join(" ");
  const log = path.join(dataDir, "..", `${path.basename(dataDir)}.log`);
  const pgCtl = path.join(bin, "pg_ctl");
  return {
    role,
    port,
    dataDir,
    adminUrl: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    start: () => void run(pgCtl, ["-D", dataDir, "-o", options, "-l", log, "-w", "-t", "60", "start"]),
    stop: (mode = "fast") => void run(pgCtl, ["-D", dataDir, "-m", mode, "-w", "-t", "60", "stop"]),
    running: () => {
      try {
        run(pgCtl, ["-D", dataDir, "status"]);
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** A new primary in `<dir>/pg-primary`. */
export async function createPrimary(dir: string, port: number): Promise<PgServer> {
  const primary = pgServer("primary", dir, port);
  run(path.join(postgresBinDir(), "initdb"), ["-D", primary.dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  primary.start();
  await waitUntilAnswers(primary.adminUrl);
  return primary;
}

/**
 * A streaming replica of `primary`: a base backup taken over the replication
 * protocol (`-R` writes primary_conninfo and standby.signal), started as a hot
 * standby that serves reads.
 */
export async function createReplica(dir: string, port: number, primary: PgServer): Promise<PgServer> {
  const replica = pgServer("replica", dir, port);
  run(path.join(postgresBinDir(), "pg_basebackup"), [
    "-h", "127.0.0.1", "-p", String(primary.port), "-U", "postgres",
    "-D", replica.dataDir, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
  ]);
  replica.start();
  await waitUntilAnswers(replica.adminUrl);
  return replica;
}

export async function waitUntilAnswers(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.query("SELECT 1");
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`PostgreSQL at ${url} did not answer within ${timeoutMs} ms: ${String(e)}`);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/** Waits until the replica has replayed everything the primary has written so far. */
export async function waitForReplay(primaryUrl: string, replicaUrl: string, timeoutMs = 30_000): Promise<void> {
  const p = new pg.Client({ connectionString: primaryUrl });
  const r = new pg.Client({ connectionString: replicaUrl });
  await p.connect();
  await r.connect();
  try {
    const { rows } = await p.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
    const target = rows[0]!.lsn;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows: caught } = await r.query<{ ok: boolean }>("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok", [target]);
      if (caught[0]?.ok) return;
      if (Date.now() > deadline) throw new Error(`the replica did not replay up to ${target} within ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 50));
    }
  } finally {
    await Promise.allSettled([p.end(), r.end()]);
  }
}
