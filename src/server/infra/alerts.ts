import type { Deps } from "./deps";
import { counterOf, type Metrics } from "./metrics";

export type Alert = {
  /** Stable machine name, e.g. `circuit.open`, `refund.failed`. */
  kind: string;
  severity: "critical" | "warning" | "info";
  summary: string;
  details?: Record<string, unknown>;
};

export const ALERT_TIMEOUT_MS = 2_000;

function alertCounter(metrics: Metrics) {
  return counterOf(metrics.registry, "fp_alerts_total", "Alert webhook deliveries by kind and outcome (sent, failed, not_configured)", [
    "kind",
    "outcome",
  ] as const);
}

/**
 * POSTs an alert as JSON to ALERT_WEBHOOK_URL, if one is configured. Never
 * throws and never waits longer than `timeoutMs`: callers fire and forget
 * (`void sendAlert(…)`); the outcome is logged and counted
 * (`fp_alerts_total{kind,outcome}`). Resolves to whether it was delivered.
 */
export async function sendAlert(
  deps: Pick<Deps, "env" | "log" | "clock" | "metrics">,
  alert: Alert,
  opts: { timeoutMs?: number } = {},
): Promise<boolean> {
  const counter = alertCounter(deps.metrics);
  const url = deps.env.ALERT_WEBHOOK_URL;
  if (!url) {
    counter.inc({ kind: alert.kind, outcome: "not_configured" });
    return false;
  }
  const body = {
    service: "flashpoints",
    kind: alert.kind,
    severity: alert.severity,
    summary: alert.summary,
    details: alert.details ?? {},
    at: deps.clock.now().toISOString(),
  };
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? ALERT_TIMEOUT_MS),
    });
    await res.body?.cancel().catch(() => {});
    if (!res.ok) throw new Error(`webhook answered ${res.status}`);
    counter.inc({ kind: alert.kind, outcome: "sent" });
    return true;
  } catch (err) {
    counter.inc({ kind: alert.kind, outcome: "failed" });
    deps.log.warn({ err, kind: alert.kind }, "alert webhook delivery failed");
    return false;
  }
}
