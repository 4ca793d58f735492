import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { refundBackoffCapMs, refundBackoffMs } from "./backoff";

const opts = { baseMs: 1_000, maxMs: 60_000 };

describe("refund back-off", () => {
  it("doubles its bound per attempt up to the maximum", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => refundBackoffCapMs(n, opts))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000,
    ]);
    expect(refundBackoffCapMs(10_000, opts)).toBe(60_000);
  });

  it("waits a random time between 0 and the bound (full jitter)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const ms = refundBackoffMs(attempt, opts, () => r);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThan(refundBackoffCapMs(attempt, opts));
        expect(Number.isInteger(ms)).toBe(true);
      }),
    );
    // Spread, not a fixed step: many draws for attempt 3 cover most of [0, 4 s).
    const draws = Array.from({ length: 2_000 }, () => refundBackoffMs(3, opts));
    expect(Math.min(...draws)).toBeLessThan(400);
    expect(Math.max(...draws)).toBeGreaterThan(3_600);
  });
});
