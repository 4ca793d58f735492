import type { Deps } from "./deps";
import { counterOf, type Metrics } from "./metrics";

export type Alert = {
  /** Stable machine name, e.g. `circuit.open`, `refund.failed`. */
  kind: string;
  severity: "critical" | "warning" | "info";
  summary: string;
  details?: Record<string, unknown>;
  /** The same for every delivery of one event (e.g. `refund.failed:<id>`). */
  dedupKey?: string;
};

export const ALERT_TIMEOUT_MS = 2_000;

function alertCounter(metrics: Metrics) {
  return counterOf(metrics.registry, "fp_alerts_total", "Alert webhook deliveries by kind and outcome (sent, failed, not_configured)", [
    "kind",
    "outcome",
  ] as const);
}

/** Pause before the second delivery attempt; doubles after each. */
export const ALERT_RETRY_MS = 250;

/**
 * POSTs an alert as JSON to ALERT_WEBHOOK_URL, if one is configured, trying
 * up to `attempts` times (3) when the receiver fails or does not answer within
 * `timeoutMs`. Never throws: callers may fire and forget (`void sendAlert(…)`);
 * the outcome is logged and counted (`fp_alerts_total{kind,outcome}`).
 * Resolves to whether it was delivered. The body carries `dedupKey` when the
 * alert has one, so a receiver can drop a delivery it got twice.
 */
export async function sendAlert(
  deps: Pick<Deps, "env" | "log" | "clock" | "metrics">,
  alert: Alert,
  opts: { timeoutMs?: number; attempts?: number } = {},
): Promise<boolean> {
  const counter = alertCounter(deps.metrics);
  const url = deps.env.ALERT_WEBHOOK_URL;
  if (!url) {
    counter.inc({ kind: alert.kind, outcome: "not_configured" });
    return false;
  }
  const body = JSON.stringify({
    service: "flashpoints",
    kind: alert.kind,
    severity: alert.severity,
    summary: alert.summary,
    details: alert.details ?? {},
    ...(alert.dedupKey ? { dedupKey: alert.dedupKey } : {}),
    at: deps.clock.now().toISOString(),
  });
  const attempts = Math.max(1, opts.attempts ?? 3);
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await new Promise((r) => setTimeout(r, ALERT_RETRY_MS * 2 ** (attempt - 2)));
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(opts.timeoutMs ?? ALERT_TIMEOUT_MS),
      });
      await res.body?.cancel().catch(() => {});
      if (!res.ok) throw new Error(`webhook answered ${res.status}`);
      counter.inc({ kind: alert.kind, outcome: "sent" });
      return true;
    } catch (err) {
      lastError = err;
    }
  }
  counter.inc({ kind: alert.kind, outcome: "failed" });
  deps.log.warn({ err: lastError, kind: alert.kind, attempts }, "alert webhook delivery failed");
  return false;
}

const inFlight = new Set<Promise<unknown>>();

/**
 * Raises an alert: an `error` log line at once (the record of it), then the
 * webhook in the background. `alertsSettled` lets a process that is shutting
 * down wait for deliveries still under way.
 */
export function raiseAlert(deps: Pick<Deps, "env" | "log" | "clock" | "metrics">, alert: Alert): void {
  deps.log.error({ alert: { kind: alert.kind, severity: alert.severity, dedupKey: alert.dedupKey, ...alert.details } }, alert.summary);
  const delivery = sendAlert(deps, alert).finally(() => inFlight.delete(delivery));
  inFlight.add(delivery);
}

/** Waits (at most `timeoutMs`) for alert deliveries still under way. */
export async function alertsSettled(timeoutMs = 10_000): Promise<void> {
  if (inFlight.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled([...inFlight]),
    new Promise<void>((r) => {
      timer = setTimeout(r, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}
