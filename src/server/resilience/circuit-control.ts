import type { Deps } from "~/server/infra/deps";
import type { AuditEntry } from "~/server/audit/audit-log";
import {
  circuitConfigOf,
  circuitConfigSetting,
  circuitForcedSetting,
  DEFAULT_CIRCUIT_CONFIG,
  getCircuit,
  resetCircuitState,
  type CircuitConfig,
  type CircuitName,
  type CircuitState,
  type CircuitView,
} from "./circuit-breaker";
import { updateSetting } from "./settings-update";

/**
 * What operators do to the circuit breakers (./circuit-breaker.ts): force a
 * state, reset, change the thresholds. Each change is a live setting, written
 * with its audit entry in one transaction and applied on every instance.
 */

type OperatorCall = { actor: AuditEntry["actor"]; requestId?: string | null };

async function viewOrNull(deps: Deps, name: CircuitName): Promise<CircuitView | null> {
  return getCircuit(deps, name).catch(() => null);
}

/**
 * Forces a breaker into `state` until `resetCircuit`: recorded in Postgres with
 * its audit entry (one transaction), then applied in Redis. Should Redis miss
 * that step, every instance re-applies it from the settings on its next call.
 */
export async function forceCircuit(
  deps: Deps,
  input: { name: CircuitName; state: CircuitState; reason: string },
  caller: OperatorCall,
): Promise<CircuitView> {
  const before = await viewOrNull(deps, input.name);
  const at = deps.clock.now().toISOString();
  await updateSetting(deps, circuitForcedSetting, {
    actor: caller.actor,
    action: "circuit.force",
    target: `circuit:${input.name}`,
    reason: input.reason,
    requestId: caller.requestId,
    change: (current) => ({ ...current, [input.name]: { state: input.state, reason: input.reason, by: caller.actor.email, at } }),
    audit: { before, after: { state: input.state, forced: true, forcedBy: caller.actor.email } },
  });
  return afterChange(deps, input.name, { state: input.state, forced: true, by: caller.actor.email, reason: input.reason });
}

/** Ends a forced state (or clears an automatic one): automatic again, counts cleared. */
export async function resetCircuit(
  deps: Deps,
  input: { name: CircuitName; reason: string },
  caller: OperatorCall,
): Promise<CircuitView> {
  const before = await viewOrNull(deps, input.name);
  await updateSetting(deps, circuitForcedSetting, {
    actor: caller.actor,
    action: "circuit.reset",
    target: `circuit:${input.name}`,
    reason: input.reason,
    requestId: caller.requestId,
    change: (current) => {
      const next = { ...current };
      delete next[input.name];
      return next;
    },
    audit: { before, after: { state: "CLOSED", forced: false, errorCount: 0 } },
  });
  try {
    return await resetCircuitState(deps, input.name);
  } catch (err) {
    deps.log.warn({ err, circuit: input.name }, "circuit reset recorded; redis will be repaired by the next call");
    return { name: input.name, state: "CLOSED", errorCount: 0, openedAt: null, halfOpenAt: null, forcedBy: null, forced: false, forcedReason: null };
  }
}

async function afterChange(
  deps: Deps,
  name: CircuitName,
  expected: { state: CircuitState; forced: boolean; by: string; reason: string },
): Promise<CircuitView> {
  try {
    return await getCircuit(deps, name);
  } catch (err) {
    deps.log.warn({ err, circuit: name }, "circuit change recorded; redis will apply it with the next call");
    return {
      name,
      state: expected.state,
      errorCount: 0,
      openedAt: null,
      halfOpenAt: null,
      forcedBy: expected.by,
      forced: expected.forced,
      forcedReason: expected.reason,
    };
  }
}

export async function getCircuitConfig(deps: Deps): Promise<CircuitConfig> {
  return circuitConfigOf(await deps.settings.ready());
}

/** An admin changes the thresholds (all breakers): audited, live on every instance. */
export async function setCircuitConfig(
  deps: Deps,
  input: Partial<CircuitConfig> & { reason: string },
  caller: OperatorCall,
): Promise<CircuitConfig> {
  const { reason, ...patch } = input;
  const { after } = await updateSetting(deps, circuitConfigSetting, {
    actor: caller.actor,
    action: "circuit.configure",
    target: "circuit",
    reason,
    requestId: caller.requestId,
    change: (current) => ({ ...DEFAULT_CIRCUIT_CONFIG, ...current, ...patch }),
    auditView: (value) => ({ ...DEFAULT_CIRCUIT_CONFIG, ...value }),
  });
  return { ...DEFAULT_CIRCUIT_CONFIG, ...after };
}
