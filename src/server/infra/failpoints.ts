/**
 * Failpoints for tests and drills (README, "Failpoints"): `FAILPOINTS="name=action,…"`
 * with action `error` or `delay:<ms>`. Inert unless NODE_ENV is `test` or
 * FAILPOINTS_ENABLED=1, so a stray variable in production does nothing.
 */
export type FailpointAction = { kind: "error" } | { kind: "delay"; ms: number };

export const FAILPOINT_NAMES = [
  "credit.afterCommit",
  "credit.beforeCommit",
  "flashSale.afterDebit",
  "refund.apply",
  "breaker.infraFailure",
] as const;

export class FailpointError extends Error {
  constructor(readonly failpoint: string) {
    super(`failpoint ${failpoint} triggered`);
    this.name = "FailpointError";
  }
}

export function parseFailpoints(spec: string | undefined): Map<string, FailpointAction> {
  const out = new Map<string, FailpointAction>();
  if (!spec) return out;
  for (const part of spec.split(",")) {
    const trimmed = part.trim();
    if (!trimmed) continue;
    const [name, action] = trimmed.split("=", 2);
    if (!name || !action) throw new Error(`FAILPOINTS: "${trimmed}" is not name=action`);
    if (action === "error") out.set(name, { kind: "error" });
    else if (/^delay:\d+$/.test(action)) out.set(name, { kind: "delay", ms: Number(action.slice(6)) });
    else throw new Error(`FAILPOINTS: unknown action "${action}" for ${name} (error | delay:<ms>)`);
  }
  return out;
}

export class Failpoints {
  private points: Map<string, FailpointAction>;

  constructor(
    spec: string | undefined,
    private readonly enabled: boolean,
  ) {
    this.points = enabled ? parseFailpoints(spec) : new Map();
  }

  /** Replaces the active set (tests); ignored when failpoints are disabled. */
  set(spec: string | undefined): void {
    this.points = this.enabled ? parseFailpoints(spec) : new Map();
  }

  isActive(name: string): boolean {
    return this.points.has(name);
  }

  /** Runs the action configured for `name`, if any. */
  async hit(name: string): Promise<void> {
    const action = this.points.get(name);
    if (!action) return;
    if (action.kind === "delay") await new Promise((r) => setTimeout(r, action.ms));
    else throw new FailpointError(name);
  }
}
