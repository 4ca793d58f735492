import client from "prom-client";

/**
 * One registry per process. Kept on globalThis because the HTTP server and the
 * Next.js bundles can load this module more than once in the same process.
 */
function create() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "fp_" });

  const requests = new client.Counter({
    name: "fp_api_requests_total",
    help: "API procedure calls by procedure and outcome (ok or the appCode)",
    labelNames: ["procedure", "outcome"] as const,
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: "fp_api_request_duration_seconds",
    help: "API procedure latency by procedure and outcome",
    labelNames: ["procedure", "outcome"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const degraded = new client.Counter({
    name: "fp_degraded_total",
    help: "Requests served on a degraded path because a dependency failed (component, reason)",
    labelNames: ["component", "reason"] as const,
    registers: [registry],
  });
  const guardRefusals = new client.Counter({
    name: "fp_request_guard_refusals_total",
    help: "API requests refused by the request guard before tRPC ran",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  return { registry, requests, latency, degraded, guardRefusals };
}

export type Metrics = ReturnType<typeof create>;

const store = globalThis as unknown as { __fpMetrics?: Metrics };

export function getMetrics(): Metrics {
  store.__fpMetrics ??= create();
  return store.__fpMetrics;
}

/**
 * A counter or gauge of `registry`, registered on first use. A registry can be
 * reached from more than one copy of a module (the HTTP server and Next's
 * bundles), so an existing metric of the same name is reused rather than
 * registered twice.
 */
export function counterOf<L extends string>(
  registry: Metrics["registry"],
  name: string,
  help: string,
  labelNames: readonly L[],
): client.Counter<L> {
  return (
    (registry.getSingleMetric(name) as client.Counter<L> | undefined) ??
    new client.Counter({ name, help, labelNames, registers: [registry] })
  );
}

export function gaugeOf<L extends string>(
  registry: Metrics["registry"],
  name: string,
  help: string,
  labelNames: readonly L[],
): client.Gauge<L> {
  return (
    (registry.getSingleMetric(name) as client.Gauge<L> | undefined) ??
    new client.Gauge({ name, help, labelNames, registers: [registry] })
  );
}
