import { writeFileSync } from "node:fs";
import path from "node:path";
import { startDetached, type ProcessEntry } from "./processes";

/**
 * The load balancer: `/api/trpc` (the service API and the dashboard's own
 * calls) over the API-only instances — by `X-FlashPoints-User` when the
 * caller sends it, else round-robin — everything else (pages,
 * assets, login) to the dashboard instance. Checks of `/api/ready` take an
 * instance out within a second of it dying or draining (503 while it shuts
 * down); not `/api/health`, which fails on every instance at once when the
 * PostgreSQL or Redis they share is down, and would leave the balancer none.
 *
 * Retries: only a request whose connection was refused is sent again to
 * another instance (`retry-on conn-failure`) — it never reached the first, so
 * it cannot run twice. A request already sent to an instance that then dies
 * is answered 502/503 and is the client's to retry with the same
 * `X-Request-Id`, which the service replays instead of running again.
 */
export type HaproxyOptions = {
  dir: string;
  port: number;
  api: { name: string; port: number }[];
  dashboardPort: number;
  /** Where the statistics page listens (`/stats`). */
  statsPort: number;
};

export function haproxyConfig(o: HaproxyOptions): string {
  const apiServers = o.api.map((s) => `  server ${s.name} 127.0.0.1:${s.port} check`).join("\n");
  return `global
  maxconn 4000
  log stdout format raw local0 warning

defaults
  mode http
  log global
  option httplog
  option dontlognull
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s
  timeout queue 5s
  # TRUST_PROXY=1 on every instance: the client address is the last X-Forwarded-For entry, the one added here.
  option forwardfor
  retries 2
  option redispatch 1
  retry-on conn-failure
  default-server inter 500ms fall 2 rise 2 fastinter 250ms downinter 500ms

frontend flashpoints
  bind 127.0.0.1:${o.port}
  # What a client sent in these is overwritten, never passed on.
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  acl is_api path_beg /api/trpc
  use_backend api if is_api
  default_backend dashboard

backend api
  # Calls that name their user in X-FlashPoints-User go to one instance per
  # user (consistent hashing: an instance that leaves moves only its share),
  # so one hot account's changes meet in one engine's batches; calls without
  # the header go round-robin.
  balance hdr(X-FlashPoints-User)
  hash-type consistent
  option httpchk GET /api/ready
  http-check expect status 200
${apiServers}

backend dashboard
  option httpchk GET /api/ready
  http-check expect status 200
  server dashboard 127.0.0.1:${o.dashboardPort} check

frontend stats
  bind 127.0.0.1:${o.statsPort}
  stats enable
  stats uri /stats
  stats refresh 2s
`;
}

export function startHaproxy(o: HaproxyOptions): ProcessEntry {
  const cfg = path.join(o.dir, "haproxy.cfg");
  writeFileSync(cfg, haproxyConfig(o));
  // -db: stay in the foreground (this process is the one tracked).
  return startDetached("haproxy", "haproxy", ["-db", "-f", cfg], { log: path.join(o.dir, "haproxy.log") });
}
