import type { Deps } from "~/server/infra/deps";
import { listCircuits } from "./circuit-breaker";
import { refreshSwitchGauges } from "./switches";

/**
 * Sets the admission-control gauges from the state every instance shares,
 * right before they are scraped: each breaker's state (one Redis call each;
 * a Redis that does not answer leaves the last value) and the switches in
 * force on this instance.
 */
export async function refreshAdmissionGauges(deps: Deps): Promise<void> {
  refreshSwitchGauges(deps);
  await listCircuits(deps).catch(() => undefined);
}
