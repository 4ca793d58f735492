import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { seedFromEnv } from "./prng";
import { runSimulation } from "./runner";

/**
 * The seeded simulation (docs/operations.md, "Simulation"): `npm run
 * test:sim` runs SIM_STEPS steps (default below, about 2–3 minutes on 2
 * cores) from a random seed, or from SEED to replay a run; `npm run
 * test:soak` runs many more, checking the invariants every SIM_CHECK_EVERY
 * steps.
 */
const DEFAULT_STEPS = 1500;

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, not ${JSON.stringify(raw)}`);
  return n;
}

describe("simulation", () => {
  it("keeps every invariant through a seeded run of calls and faults on two instances", async () => {
    const seed = seedFromEnv();
    const steps = positiveInt("SIM_STEPS", DEFAULT_STEPS);
    const report = await runSimulation({
      seed,
      steps,
      checkEvery: positiveInt("SIM_CHECK_EVERY", 1),
      runTag: randomBytes(3).toString("hex"),
      log: (line) => process.stdout.write(`${line}\n`),
    });
    const tally = [...report.tally].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}: ${n}`);
    process.stdout.write(`SEED=${seed} answers: ${tally.join(", ")}\n`);
    expect(report.steps).toBe(steps);
  });
});
