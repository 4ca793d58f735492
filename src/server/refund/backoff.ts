/**
 * How long a refund waits after its `attempt`-th failed attempt: exponential
 * back-off with full jitter — a random wait between 0 and
 * `min(maxMs, baseMs × 2^(attempt−1))` — so refunds that failed together (a
 * database blip) do not all come back at the same moment.
 */
export function refundBackoffMs(attempt: number, opts: { baseMs: number; maxMs: number }, random: () => number = Math.random): number {
  return Math.floor(random() * refundBackoffCapMs(attempt, opts));
}

/** The longest wait after the `attempt`-th failure (the jitter's upper bound). */
export function refundBackoffCapMs(attempt: number, opts: { baseMs: number; maxMs: number }): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  return Math.min(opts.maxMs, opts.baseMs * 2 ** exponent);
}
