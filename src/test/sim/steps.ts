/**
 * What the simulation does, as data: the generator makes these from the PRNG
 * alone (generator.ts), the runner carries them out (runner.ts), and each has
 * a one-line description for failure reports.
 */

/** Which of the two API instances a call or fault goes to. */
export type Instance = 0 | 1;
export const INSTANCE_NAMES = ["A", "B"] as const;

export type ChangeBody = { userId: string; creditTypeId: string; amount: number; businessCode: string; businessId: string };

/** A debit the simulation asked for, by business key: what a refund gives back (its transaction id is looked up when sent). */
export type DebitKey = { businessCode: string; businessId: string; amount: number };

type CallBase = {
  /** Unique per generated call; repeats keep the original's. */
  id: number;
  instance: Instance;
  /** Sent as X-Request-Id when set. */
  requestId: string | null;
};

export type Call =
  | (CallBase & { kind: "grant" | "deduct"; body: ChangeBody })
  | (CallBase & { kind: "batchDeduct"; body: { items: ChangeBody[] } })
  | (CallBase & { kind: "refund"; target: DebitKey; amount: number | null; businessCode: string; businessId: string })
  | (CallBase & { kind: "purchase"; userId: string; sale: number; item: number });

/** A call as sent: the original, or a repeat of one (same body, same X-Request-Id), possibly to the other instance. */
export type Send = { call: Call; repeat: boolean };

export type FailpointSpec = { name: string; action: string };

export type Step =
  | { kind: "burst"; sends: Send[] }
  | { kind: "failpoints"; instance: Instance; points: FailpointSpec[] }
  | { kind: "redisKill" }
  | { kind: "redisRestart" }
  | { kind: "redisBounce" }
  | { kind: "redisPause"; ms: number; sends: Send[] }
  | { kind: "pgTerminate"; instance: Instance; afterMs: number; sends: Send[] }
  | { kind: "worker"; instance: Instance; tasks: WorkerTask[] }
  | { kind: "newSale"; sale: number; items: { stock: number; price: number }[] };

export type WorkerTask = "refunds" | "sweep" | "reconcile" | "resolve";

const inst = (i: Instance) => INSTANCE_NAMES[i];

export function describeCall(c: Call): string {
  const rid = c.requestId ? ` rid=${c.requestId}` : "";
  switch (c.kind) {
    case "grant":
      return `${inst(c.instance)} grant ${c.body.userId} +${c.body.amount} [${c.body.businessId}]${rid}`;
    case "deduct":
      return `${inst(c.instance)} deduct ${c.body.userId} −${c.body.amount} [${c.body.businessId}]${rid}`;
    case "batchDeduct":
      return `${inst(c.instance)} batchDeduct(${c.body.items.map((i) => `${i.userId} −${i.amount} [${i.businessId}]`).join(", ")})${rid}`;
    case "refund":
      return `${inst(c.instance)} refund ${c.amount ?? "rest"} of [${c.target.businessId}] as [${c.businessId}]${rid}`;
    case "purchase":
      return `${inst(c.instance)} purchase ${c.userId} sale ${c.sale} item ${c.item}${rid}`;
  }
}

export function describeSends(sends: readonly Send[]): string {
  return sends.map((s) => `${s.repeat ? "again: " : ""}${describeCall(s.call)}`).join("; ");
}

export function describeStep(step: Step): string {
  switch (step.kind) {
    case "burst":
      return `burst of ${step.sends.length}: ${describeSends(step.sends)}`;
    case "failpoints":
      return `failpoints on ${inst(step.instance)}: ${step.points.map((p) => `${p.name}=${p.action}`).join(",") || "none"}`;
    case "redisKill":
      return "Redis SIGKILLed (stays down)";
    case "redisRestart":
      return "Redis restarted empty; sale re-warmed";
    case "redisBounce":
      return "Redis SIGKILLed and restarted empty at once; sale re-warmed";
    case "redisPause":
      return `Redis SIGSTOPped for ${step.ms} ms during a burst of ${step.sends.length}: ${describeSends(step.sends)}`;
    case "pgTerminate":
      return `${inst(step.instance)}'s PostgreSQL backends terminated ${step.afterMs} ms into a burst of ${step.sends.length}: ${describeSends(step.sends)}`;
    case "worker":
      return `worker round on ${inst(step.instance)}: ${step.tasks.join(", ")}`;
    case "newSale":
      return `new sale ${step.sale}: ${step.items.map((i, n) => `item ${n} stock ${i.stock} at ${i.price}`).join(", ")}`;
  }
}
