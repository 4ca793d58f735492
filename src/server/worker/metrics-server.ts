import { createServer, type Server } from "node:http";
import type { Deps } from "~/server/infra/deps";

/**
 * The worker's own Prometheus endpoint (`WORKER_METRICS_PORT`): what only
 * the worker counts (refund attempts, alerts, engine batches), on loopback.
 * The queue's depth is the API's to report (`/api/metrics`), read from the
 * database the workers share.
 */
export async function startWorkerMetrics(deps: Deps, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    deps.metrics.registry
      .metrics()
      .then((text) => res.writeHead(200, { "content-type": deps.metrics.registry.contentType }).end(text))
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return server;
}
