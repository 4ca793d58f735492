import { uniformInt } from "pure-rand/distribution/uniformInt";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import type { RandomGenerator } from "pure-rand/types/RandomGenerator";

/**
 * The simulation's only source of choices: every operation, target, amount and
 * fault is drawn from here, so a run is a pure function of its seed and
 * `SEED=<n>` replays it. (Timing still varies between runs: what a replay
 * repeats is the sequence of requests and faults, not the interleaving.)
 * pure-rand is fast-check's generator, already installed with it.
 */
export class Prng {
  private readonly rng: RandomGenerator;

  constructor(readonly seed: number) {
    this.rng = xoroshiro128plus(seed);
  }

  /** A whole number in [lo, hi]. */
  int(lo: number, hi: number): number {
    return uniformInt(this.rng, lo, hi);
  }

  /** True with probability `p` (to 1/10,000). */
  chance(p: number): boolean {
    return this.int(0, 9_999) < Math.round(p * 10_000);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(0, items.length - 1)]!;
  }

  /** One of the keys, with the given (integer) weights. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    const total = entries.reduce((s, [, w]) => s + w, 0);
    let n = this.int(1, total);
    for (const [k, w] of entries) {
      n -= w;
      if (n <= 0) return k;
    }
    return entries[entries.length - 1]![0];
  }
}

/** The seed of this run: `SEED` when given (a replay), else a fresh one. */
export function seedFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.SEED?.trim();
  if (given) {
    const n = Number(given);
    if (!Number.isSafeInteger(n) || n < 0 || n > 0x7fff_ffff) throw new Error(`SEED must be a whole number 0…${0x7fff_ffff}, not ${JSON.stringify(given)}`);
    return n;
  }
  // Choosing the seed is the one random draw outside the PRNG.
  return Math.floor(Math.random() * 0x7fff_ffff);
}
