import { z } from "zod";
import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { defineSetting, type LiveSettings } from "~/server/infra/live-settings";
import type { AuditEntry } from "~/server/audit/audit-log";
import { resilienceMetrics } from "./resilience-metrics";
import { updateSetting } from "./settings-update";

/**
 * Degradation switches: named features an operator turns off under pressure.
 * `on` is normal service; a switched-off feature answers 503 `DEGRADED`. Live
 * like every setting (key `switches`): a change reaches every instance within
 * a second.
 */
export const SWITCHES = {
  ledgerReads: {
    default: true,
    description: "credit.ledger history reads. Off: 503 DEGRADED, saving Postgres for balance changes.",
  },
  outboxRelay: {
    default: true,
    description: "The worker's outbox relay. Off: it idles; committed events wait in Postgres until it is on again.",
  },
  flashSaleCacheOnly: {
    default: false,
    description: "On: flashSale.activity answers from the Redis cache only and never reads Postgres.",
  },
  flashSalePurchases: {
    default: true,
    description: "flashSale.purchase. Off: every purchase answers 503 DEGRADED (all sales paused).",
  },
  rateLimitFailClosed: {
    default: false,
    description:
      "On: while Redis is unreachable the rate limiter refuses calls (503 UNAVAILABLE). Off (default): it lets them through, counted as fail_open.",
  },
} as const satisfies Record<string, { default: boolean; description: string }>;
export type SwitchName = keyof typeof SWITCHES;
export const SWITCH_NAMES = Object.keys(SWITCHES) as [SwitchName, ...SwitchName[]];
export const ZSwitchName = z.enum(SWITCH_NAMES);

/** Unknown names inside the stored record are ignored, not fatal. */
export const switchesSetting = defineSetting("switches", z.record(z.string(), z.boolean()));

export type SwitchView = {
  name: SwitchName;
  on: boolean;
  default: boolean;
  description: string;
};

export function switchOn(live: LiveSettings, name: SwitchName): boolean {
  return live.get(switchesSetting).value?.[name] ?? SWITCHES[name].default;
}

/** Whether a switch is on (e.g. the outbox relay: `if (!(await isSwitchOn(deps, "outboxRelay"))) return 0;`). */
export async function isSwitchOn(deps: Pick<Deps, "settings">, name: SwitchName): Promise<boolean> {
  return switchOn(await deps.settings.ready(), name);
}

/** Throws 503 DEGRADED when the switch is off. */
export async function assertSwitchOn(deps: Pick<Deps, "settings">, name: SwitchName, feature: string = name): Promise<void> {
  if (!(await isSwitchOn(deps, name))) {
    throw new AppError("DEGRADED", `${feature} is switched off for now (degradation switch "${name}")`, {
      retryAfterMs: 5_000,
      details: { switch: name },
    });
  }
}

function viewOf(live: LiveSettings, name: SwitchName): SwitchView {
  return { name, on: switchOn(live, name), default: SWITCHES[name].default, description: SWITCHES[name].description };
}

/** The switch gauge (`fp_switch_state`) set from the switches in force on this instance. */
export function refreshSwitchGauges(deps: Pick<Deps, "settings" | "metrics">): void {
  const gauge = resilienceMetrics(deps.metrics).switchState;
  for (const name of SWITCH_NAMES) gauge.set({ name }, switchOn(deps.settings, name) ? 1 : 0);
}

export async function listSwitches(deps: Deps): Promise<SwitchView[]> {
  const live = await deps.settings.ready();
  return SWITCH_NAMES.map((name) => viewOf(live, name));
}

/** An admin turns a switch on or off: audited, applied on every instance within a second. */
export async function setSwitch(
  deps: Deps,
  input: { name: SwitchName; on: boolean; reason: string },
  caller: { actor: AuditEntry["actor"]; requestId?: string | null },
): Promise<SwitchView> {
  await updateSetting(deps, switchesSetting, {
    actor: caller.actor,
    action: "switch.set",
    target: `switch:${input.name}`,
    reason: input.reason,
    requestId: caller.requestId,
    change: (current) => ({ ...current, [input.name]: input.on }),
    auditView: (value) => ({ [input.name]: value?.[input.name] ?? SWITCHES[input.name].default }),
  });
  refreshSwitchGauges(deps);
  deps.log.warn({ switch: input.name, on: input.on, by: caller.actor.email, reason: input.reason }, "degradation switch changed");
  return viewOf(deps.settings, input.name);
}
