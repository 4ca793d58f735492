import { counterOf, gaugeOf, type Metrics } from "~/server/infra/metrics";

/** Metrics of admission control (rate limiter, circuit breakers, switches, request-id replay). */
function create(registry: Metrics["registry"]) {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    counterOf(registry, name, help, labelNames);
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) => gaugeOf(registry, name, help, labelNames);
  return {
    rateLimitDecisions: counter(
      "fp_rate_limit_decisions_total",
      "Token-bucket decisions by procedure: allowed, limited, fail_open / fail_closed (Redis unreachable)",
      ["procedure", "decision"] as const,
    ),
    circuitDecisions: counter(
      "fp_circuit_decisions_total",
      "Circuit-breaker admissions by name: allowed, probe, rejected, fail_open (state unreadable)",
      ["name", "decision"] as const,
    ),
    circuitState: gauge(
      "fp_circuit_state",
      "Circuit state as this instance last saw it: 0 closed, 1 half-open, 2 open",
      ["name"] as const,
    ),
    circuitTransitions: counter(
      "fp_circuit_transitions_total",
      "Circuit state transitions made by this instance",
      ["name", "from", "to"] as const,
    ),
    switchState: gauge("fp_switch_state", "Degradation switches: 1 on (normal), 0 off", ["name"] as const),
    requestReplay: counter(
      "fp_request_replay_total",
      "Mutations sent with an X-Request-Id, by what happened (executed, served from cache/store, in flight, mismatch)",
      ["outcome"] as const,
    ),
  };
}

export type ResilienceMetrics = ReturnType<typeof create>;

const store = globalThis as unknown as { __fpResilienceMetrics?: WeakMap<object, ResilienceMetrics> };

export function resilienceMetrics(metrics: Metrics): ResilienceMetrics {
  store.__fpResilienceMetrics ??= new WeakMap();
  let m = store.__fpResilienceMetrics.get(metrics.registry);
  if (!m) {
    m = create(metrics.registry);
    store.__fpResilienceMetrics.set(metrics.registry, m);
  }
  return m;
}
