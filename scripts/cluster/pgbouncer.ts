import { chmodSync, writeFileSync } from "node:fs";
import path from "node:path";
import { asServiceUser } from "./postgres";
import { startDetached, type ProcessEntry } from "./processes";

/**
 * PgBouncer in front of the primary. Two pools over the same database:
 *
 * - `<db>` in **transaction** mode, for the service: a server connection is
 *   held only for the length of a transaction, so hundreds of client
 *   connections (every instance's pool) share a few server ones. What the
 *   service does is compatible: statements go unnamed (`DB_POOLER=pgbouncer`),
 *   advisory locks are transaction-scoped (`pg_try_advisory_xact_lock`),
 *   nothing LISTENs, no session `SET` is issued; the time limits a direct
 *   connection sends at connect are set here by `connect_query` on each
 *   server connection.
 * - `<db>_session` in **session** mode, for what needs a whole session:
 *   migrations (`prisma migrate deploy` holds a session advisory lock) and
 *   administrative scripts.
 */
export type PgBouncerOptions = {
  dir: string;
  port: number;
  primaryPort: number;
  dbName: string;
  /** Roles allowed to connect (the service's and the owner's). */
  users: string[];
  /** Server connections per pool: what the primary sees however many instances run. */
  poolSize: number;
  statementTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
};

export function pgbouncerConfig(o: PgBouncerOptions): string {
  const connectQuery = `SET statement_timeout = ${o.statementTimeoutMs}; SET idle_in_transaction_session_timeout = ${o.idleInTransactionTimeoutMs}`;
  return `[databases]
${o.dbName} = host=127.0.0.1 port=${o.primaryPort} dbname=${o.dbName} pool_mode=transaction connect_query='${connectQuery}'
${o.dbName}_session = host=127.0.0.1 port=${o.primaryPort} dbname=${o.dbName} pool_mode=session

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${o.port}
unix_socket_dir =
; The local topology's PostgreSQL trusts loopback; PgBouncer checks the role
; is one it knows (auth_file). Production: auth_type = scram-sha-256 with auth_query.
auth_type = trust
auth_file = ${path.join(o.dir, "pgbouncer-users.txt")}
pool_mode = transaction
default_pool_size = ${o.poolSize}
min_pool_size = 2
reserve_pool_size = 4
max_client_conn = 2000
max_db_connections = ${o.poolSize + 8}
; A client waits at most this long for a server connection, then gets an error
; (the service maps it to a retryable UNAVAILABLE).
query_wait_timeout = 10
server_reset_query =
server_check_delay = 5
ignore_startup_parameters = extra_float_digits
application_name_add_host = 0
logfile = ${path.join(o.dir, "pgbouncer.log")}
pidfile = ${path.join(o.dir, "pgbouncer.pid")}
admin_users = postgres
`;
}

export function startPgBouncer(o: PgBouncerOptions): ProcessEntry {
  const ini = path.join(o.dir, "pgbouncer.ini");
  writeFileSync(ini, pgbouncerConfig(o));
  writeFileSync(path.join(o.dir, "pgbouncer-users.txt"), [...o.users, "postgres"].map((u) => `"${u}" ""`).join("\n") + "\n");
  for (const f of [ini, path.join(o.dir, "pgbouncer-users.txt")]) chmodSync(f, 0o644);
  const [cmd, args] = asServiceUser("pgbouncer", [ini]);
  return startDetached("pgbouncer", cmd, args, { log: path.join(o.dir, "pgbouncer.out") });
}
