import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import type { AuditEntry } from "~/server/audit/audit-log";
import { currentSettings, SWITCHES, SWITCH_NAMES, updateSetting, type LiveSettings, type SwitchName } from "./settings";

/**
 * Degradation switches (settings key `switches`): named features an operator
 * turns off under pressure. Live like every setting; a switched-off feature
 * answers 503 `DEGRADED`.
 */
export { SWITCHES, SWITCH_NAMES, type SwitchName };

export type SwitchView = {
  name: SwitchName;
  on: boolean;
  default: boolean;
  description: string;
};

function switchOn(live: LiveSettings, name: SwitchName): boolean {
  return live.get("switches").value?.[name] ?? SWITCHES[name].default;
}

/** Whether a switch is on (e.g. the outbox relay: `if (!(await isSwitchOn(deps, "outboxRelay"))) return 0;`). */
export async function isSwitchOn(deps: Deps, name: SwitchName): Promise<boolean> {
  return switchOn(await currentSettings(deps), name);
}

/** Throws 503 DEGRADED when the switch is off. */
export async function assertSwitchOn(deps: Deps, name: SwitchName, feature: string = name): Promise<void> {
  if (!(await isSwitchOn(deps, name))) {
    throw new AppError("DEGRADED", `${feature} is switched off for now (degradation switch "${name}")`, {
      details: { switch: name },
    });
  }
}

export async function listSwitches(deps: Deps): Promise<SwitchView[]> {
  const live = await currentSettings(deps);
  return SWITCH_NAMES.map((name) => ({
    name,
    on: switchOn(live, name),
    default: SWITCHES[name].default,
    description: SWITCHES[name].description,
  }));
}

/** An admin turns a switch on or off: audited, applied on every instance within a second. */
export async function setSwitch(
  deps: Deps,
  input: { name: SwitchName; on: boolean; reason: string },
  caller: { actor: AuditEntry["actor"]; requestId?: string | null },
): Promise<SwitchView> {
  const { after } = await updateSetting(deps, "switches", {
    actor: caller.actor,
    action: "switch.set",
    target: `switch:${input.name}`,
    reason: input.reason,
    requestId: caller.requestId,
    change: (current) => ({ ...current, [input.name]: input.on }),
    auditView: (value) => ({ [input.name]: value?.[input.name] ?? SWITCHES[input.name].default }),
  });
  deps.log.warn({ switch: input.name, on: input.on, by: caller.actor.email, reason: input.reason }, "degradation switch changed");
  return {
    name: input.name,
    on: after[input.name] ?? SWITCHES[input.name].default,
    default: SWITCHES[input.name].default,
    description: SWITCHES[input.name].description,
  };
}
