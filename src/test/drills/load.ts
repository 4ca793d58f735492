import { randomInt, randomUUID } from "node:crypto";
import type { Db } from "~/server/infra/db";

/** What the load is sent to: the drills' Stack, or the several-instance topology behind its balancer. */
export type LoadTarget = {
  /** Where to send (one picked at random per request). */
  urls(): string[];
  apiKey: string;
  users: string[];
  sale: { activityId: string; itemIds: string[] };
  creditTypeId: string;
  /** The checks' own connection to the primary. */
  observer: Db;
};

/**
 * The mixed load a drill runs while it injects its fault, as well-behaved
 * clients send it: grants, deductions, batch deductions, purchases, refunds
 * of earlier debits, and repeats of earlier requests with the same
 * `X-Request-Id`. Every answer is kept; `settle` then retries what was told
 * "not now" (or got no answer) until each request has a final one.
 */

export const CLIENT_TIMEOUT_MS = 10_000;

/** What says "not now": retry after a while, same request id and business key (API errors table). */
const RETRYABLE = new Set(["OPERATION_LOCKED", "VERSION_CONFLICT", "DUPLICATE_REQUEST_IN_FLIGHT", "RATE_LIMITED", "CIRCUIT_OPEN", "UNAVAILABLE", "DEGRADED", "INTERNAL"]);

export type Answer =
  | { kind: "answered"; status: number; appCode: string | null; message: string | null; data: unknown; ms: number; during: string }
  | { kind: "timeout" | "connection"; ms: number; during: string };

export type Kind = "grant" | "deduct" | "batchDeduct" | "purchase" | "refund";

export type BalanceBody = { userId: string; creditTypeId: string; amount: number; businessCode: string; businessId: string };

export type LoadRequest = {
  kind: Kind;
  procedure: string;
  requestId: string;
  body: unknown;
  answers: Answer[];
};

type BatchItem = { ok: true; result: { transactionId: string } } | { ok: false; error: { appCode: string } };

export function isFinal(answer: Answer | undefined): boolean {
  if (!answer || answer.kind !== "answered") return false;
  if (answer.status === 200) return true;
  return answer.appCode !== null && !RETRYABLE.has(answer.appCode);
}

/** A 200 batch whose items include some told "not now" is not final either. */
function needsRetry(r: LoadRequest): boolean {
  const last = r.answers.at(-1);
  if (!isFinal(last)) return true;
  if (r.kind !== "batchDeduct" || last?.kind !== "answered" || last.status !== 200) return false;
  return batchItems(last.data).some((i) => !i.ok && RETRYABLE.has(i.error.appCode));
}

export function batchItems(data: unknown): BatchItem[] {
  return ((data as { items?: BatchItem[] } | null)?.items ?? []) as BatchItem[];
}

export function outcomeOf(a: Answer): string {
  if (a.kind !== "answered") return a.kind;
  return a.status === 200 ? "ok" : (a.appCode ?? `http ${a.status}`);
}

export class Load {
  readonly requests: LoadRequest[] = [];
  /** What the drill is doing now, stamped on each answer (e.g. "before", "fault", "after"). */
  phase = "before";
  private running = false;
  private loops: Promise<void>[] = [];
  private debits: { transactionId: string; amount: number }[] = [];

  constructor(
    private readonly stack: LoadTarget,
    private readonly opts: { concurrency?: number; mix?: Partial<Record<Kind | "repeat", number>>; users?: string[] } = {},
  ) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < (this.opts.concurrency ?? 24); i++) this.loops.push(this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  /** Sends `count` requests of one kind at once (a burst), and waits for their answers. */
  async burst(kind: Kind, count: number): Promise<LoadRequest[]> {
    const made = Array.from({ length: count }, () => this.make(kind));
    await Promise.all(made.map((r) => this.send(r)));
    return made;
  }

  /**
   * Retries every request without a final answer (a batch with items told
   * "not now" included), with the same request id, until each has one or
   * `deadlineMs` passes. Returns how many were retried.
   */
  async settle(deadlineMs = 60_000): Promise<number> {
    this.phase = "settle";
    const retried = new Set<LoadRequest>();
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const open = this.requests.filter(needsRetry);
      if (open.length === 0 || Date.now() > deadline) return retried.size;
      for (const r of open) retried.add(r);
      await Promise.all(open.map((r) => this.send(r)));
      if (this.requests.some(needsRetry)) await new Promise((res) => setTimeout(res, 250));
    }
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const kind = this.pickKind();
      if (kind === "repeat") {
        const earlier = this.requests[randomInt(Math.max(1, this.requests.length))];
        if (earlier) await this.send(earlier);
        continue;
      }
      await this.send(this.make(kind));
    }
  }

  private pickKind(): Kind | "repeat" {
    const mix = { grant: 15, deduct: 35, batchDeduct: 8, purchase: 15, refund: 10, repeat: 12, ...this.opts.mix };
    const total = Object.values(mix).reduce((a, b) => a + b, 0);
    let at = randomInt(total);
    for (const [kind, weight] of Object.entries(mix) as [Kind | "repeat", number][]) {
      if (at < weight) return kind;
      at -= weight;
    }
    return "deduct";
  }

  private make(kind: Kind): LoadRequest {
    const users = this.opts.users ?? this.stack.users;
    const user = () => users[randomInt(users.length)]!;
    const change = (code: string, amount: number): BalanceBody => ({
      userId: user(),
      creditTypeId: this.stack.creditTypeId,
      amount,
      businessCode: code,
      businessId: randomUUID(),
    });
    const debit = this.debits[randomInt(Math.max(1, this.debits.length))];
    const [procedure, body]: [string, unknown] =
      kind === "grant"
        ? ["credit.grant", change("drill.grant", 1 + randomInt(50))]
        : kind === "deduct"
          ? ["credit.deduct", change("drill.order", 1 + randomInt(60))]
          : kind === "batchDeduct"
            ? ["credit.batchDeduct", { items: Array.from({ length: 2 + randomInt(4) }, () => change("drill.batch", 1 + randomInt(30))) }]
            : kind === "purchase"
              ? ["flashSale.purchase", { userId: user(), activityId: this.stack.sale.activityId, itemId: this.stack.sale.itemIds[randomInt(this.stack.sale.itemIds.length)] }]
              : debit
                ? ["credit.refund", { transactionId: debit.transactionId, amount: 1 + randomInt(debit.amount), businessCode: "drill.refund", businessId: randomUUID() }]
                : ["credit.grant", change("drill.grant", 1 + randomInt(50))];
    const request: LoadRequest = { kind: procedure === "credit.grant" ? "grant" : kind, procedure, requestId: `drill-${randomUUID()}`, body, answers: [] };
    this.requests.push(request);
    return request;
  }

  private async send(r: LoadRequest): Promise<void> {
    const urls = this.stack.urls();
    const t0 = performance.now();
    const during = this.phase;
    if (urls.length === 0) {
      r.answers.push({ kind: "connection", ms: 0, during });
      await new Promise((res) => setTimeout(res, 50));
      return;
    }
    const url = urls[randomInt(urls.length)]!;
    try {
      const res = await fetch(`${url}/api/trpc/${r.procedure}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${this.stack.apiKey}`, "x-request-id": r.requestId },
        body: JSON.stringify(r.body),
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      });
      const json = (await res.json().catch(() => null)) as { result?: { data: unknown }; error?: { message?: string; data?: { appCode?: string } } } | null;
      const answer: Answer = {
        kind: "answered",
        status: res.status,
        appCode: json?.error?.data?.appCode ?? null,
        message: json?.error?.message ?? null,
        data: json?.result?.data ?? null,
        ms: performance.now() - t0,
        during,
      };
      r.answers.push(answer);
      if (answer.status === 200 && r.kind === "deduct") {
        const data = answer.data as { transactionId: string };
        this.debits.push({ transactionId: data.transactionId, amount: (r.body as BalanceBody).amount });
      }
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      r.answers.push({ kind: timedOut ? "timeout" : "connection", ms: performance.now() - t0, during });
      if (!timedOut) await new Promise((res) => setTimeout(res, 50)); // a refused connection answers at once: do not spin
    }
  }
}
