import { describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { loadEnv } from "~/server/infra/env";
import type { Deps } from "~/server/infra/deps";
import { createLogger } from "~/server/infra/logger";
import type { Metrics } from "~/server/infra/metrics";
import { LiveSettings } from "~/server/infra/live-settings";
import { rateLimitsOf, rateLimitSetting } from "./rate-limit";
import { circuitConfigOf, circuitConfigSetting, DEFAULT_CIRCUIT_CONFIG } from "./circuit-breaker";
import { refreshSwitchGauges, SWITCHES, SWITCH_NAMES, switchesSetting } from "./switches";
import { resilienceMetrics } from "./resilience-metrics";

function fakeDeps(env: Record<string, string> = {}): Deps {
  const metrics = { registry: new Registry() } as unknown as Metrics;
  const log = createLogger("silent");
  return {
    env: loadEnv({ DATABASE_URL: "postgresql://nobody@127.0.0.1:1/none", ...env }),
    log,
    metrics,
    settings: new LiveSettings({ db: {} as Deps["db"], log }),
  } as unknown as Deps;
}

describe("settings cache", () => {
  it("applies newer versions only, and defaults apply without a row", () => {
    const deps = fakeDeps({ RATE_LIMIT_PER_SECOND: "5", RATE_LIMIT_BURST: "10" });
    const live = new LiveSettings(deps);
    expect(rateLimitsOf(live, deps.env)).toMatchObject({ perSecond: 5, burst: 10, source: "env", version: 0 });
    expect(live.apply(rateLimitSetting.key, { perSecond: 20, burst: 40 }, 3, "a@x", null)).toBe(true);
    expect(live.apply(rateLimitSetting.key, { perSecond: 1, burst: 1 }, 2, "late@x", null)).toBe(false);
    expect(rateLimitsOf(live, deps.env)).toMatchObject({ perSecond: 20, burst: 40, source: "settings", version: 3, updatedBy: "a@x" });
  });

  it("treats an unreadable value as absent (defaults), never as a crash", () => {
    const deps = fakeDeps();
    const live = new LiveSettings(deps);
    live.apply(rateLimitSetting.key, { perSecond: -1, burst: "lots" }, 1, null, null);
    expect(rateLimitsOf(live, deps.env)).toMatchObject({ perSecond: 5, burst: 10, source: "env", version: 1 });
  });

  it("merges partial circuit settings over the defaults", () => {
    const live = new LiveSettings(fakeDeps());
    expect(circuitConfigOf(live)).toEqual(DEFAULT_CIRCUIT_CONFIG);
    expect(DEFAULT_CIRCUIT_CONFIG).toEqual({ errorThreshold: 10, windowMs: 60_000, openMs: 30_000, halfOpenMs: 120_000, probeRatio: 0.1 });
    live.apply(circuitConfigSetting.key, { openMs: 5_000 }, 1, null, null);
    expect(circuitConfigOf(live)).toEqual({ ...DEFAULT_CIRCUIT_CONFIG, openMs: 5_000 });
  });

  it("keeps the switch gauge in step with the switches", async () => {
    const deps = fakeDeps();
    const live = deps.settings;
    const gauge = resilienceMetrics(deps.metrics).switchState;
    const value = async (name: string) => {
      // As /api/metrics does before every scrape.
      refreshSwitchGauges(deps);
      return (await gauge.get()).values.find((v) => v.labels.name === name)?.value;
    };
    for (const name of SWITCH_NAMES) expect(await value(name)).toBe(SWITCHES[name].default ? 1 : 0);
    live.apply(switchesSetting.key, { ledgerReads: false, flashSaleCacheOnly: true, unknownSwitch: true }, 1, null, null);
    expect(await value("ledgerReads")).toBe(0);
    expect(await value("flashSaleCacheOnly")).toBe(1);
    expect(await value("outboxRelay")).toBe(1);
  });
});
