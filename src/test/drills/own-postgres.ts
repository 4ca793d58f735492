import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { sparePort } from "~/server/credit/testing";

/**
 * A PostgreSQL cluster of the drill's own (initdb + pg_ctl on a spare port, in
 * a temporary directory), so a drill can stop it with `-m immediate` — a crash —
 * without touching the machine's server. `fsync` off: nothing here must
 * survive the machine, only the process (commits stay synchronous, so a
 * crash of the server loses nothing it acknowledged).
 */
export type OwnPostgres = {
  port: number;
  /** The `postgres` database as the superuser: what throw-away databases are made from. */
  adminUrl: string;
  /** Crash it: no checkpoint, every connection cut. */
  crash: () => void;
  start: () => void;
  dispose: () => void;
};

function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(path.join(root, v, "bin", "pg_ctl"))) return path.join(root, v, "bin");
  throw new Error("pg_ctl not found under /usr/lib/postgresql/<version>/bin: install the postgresql package");
}

/** PostgreSQL refuses to run as root: as root, its tools run as the `postgres` user. */
function runAsOwner(bin: string, args: string[]): void {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args];
  execFileSync(cmd, argv, { stdio: "pipe", timeout: 60_000 });
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const bin = binDir();
  const port = await sparePort();
  const dir = mkdtempSync(path.join(tmpdir(), "fp-drill-pg-"));
  chmodSync(dir, 0o777); // the postgres user writes here when we are root
  const data = path.join(dir, "data");
  runAsOwner(path.join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off -c max_connections=200`;
  const start = () => runAsOwner(path.join(bin, "pg_ctl"), ["-D", data, "-o", options, "-l", path.join(dir, "log"), "-w", "-t", "60", "start"]);
  const stop = (mode: "immediate" | "fast") => runAsOwner(path.join(bin, "pg_ctl"), ["-D", data, "-m", mode, "-w", "stop"]);
  start();
  const adminUrl = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  const probe = new pg.Client({ connectionString: adminUrl });
  await probe.connect();
  await probe.end();
  return {
    port,
    adminUrl,
    crash: () => stop("immediate"),
    start,
    dispose: () => {
      try {
        stop("immediate");
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
