import { APP_ERROR_CODES } from "~/server/infra/app-error";
import type { Call, Send } from "./steps";
import type { World } from "./world";

/**
 * Sending the simulation's calls over HTTP, and judging every answer: each
 * call is answered in time, with 200 or a typed error (a raw INTERNAL only
 * while an error failpoint on that instance explains it); and what the
 * service said agrees with itself — one transaction per business key and per
 * X-Request-Id, one order per buyer and item — and with the ledger.
 */

/** Longer than any bounded wait of the service (lock wait, pool wait, transaction limit): past it, the call hangs. */
export const CALL_TIMEOUT_MS = 15_000;

export type Answer = { status: number; json: unknown; ms: number } | { status: "unanswered"; reason: string; ms: number };

/** A change the service said it made: it must be in the ledger. */
export type Acked = { transactionId: string; type: "CREDIT" | "DEBIT"; orderId?: string; what: string };

type RefundBody = { transactionId: string; amount?: number; businessCode: string; businessId: string };

const KNOWN_CODES = new Set<string>(APP_ERROR_CODES);

export class Caller {
  /** A refund's body, fixed the first time it is sent, so its repeats send the same. */
  private readonly refundBodies = new Map<number, Promise<RefundBody>>();

  constructor(private readonly world: World) {}

  async send(s: Send): Promise<{ answer: Answer; body: unknown }> {
    const { procedure, body } = await this.request(s.call);
    const api = this.world.instances[s.call.instance].api;
    const headers: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${this.world.apiKey}` };
    if (s.call.requestId) headers["x-request-id"] = s.call.requestId;
    const started = performance.now();
    try {
      const res = await fetch(`${api.url}/api/trpc/${procedure}`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      const text = await res.text();
      let json: unknown = text;
      try {
        json = JSON.parse(text);
      } catch {
        // Not JSON: judged as an untyped answer below.
      }
      return { answer: { status: res.status, json, ms: performance.now() - started }, body };
    } catch (e) {
      const reason = e instanceof Error && e.name === "TimeoutError" ? `no answer within ${CALL_TIMEOUT_MS} ms` : `connection failed: ${String(e)}`;
      return { answer: { status: "unanswered", reason, ms: performance.now() - started }, body };
    }
  }

  private async request(call: Call): Promise<{ procedure: string; body: unknown }> {
    switch (call.kind) {
      case "grant":
        return { procedure: "credit.grant", body: call.body };
      case "deduct":
        return { procedure: "credit.deduct", body: call.body };
      case "batchDeduct":
        return { procedure: "credit.batchDeduct", body: call.body };
      case "refund": {
        let body = this.refundBodies.get(call.id);
        if (!body) {
          body = this.refundBody(call);
          this.refundBodies.set(call.id, body);
        }
        return { procedure: "credit.refund", body: await body };
      }
      case "purchase": {
        const sale = this.world.sales[call.sale];
        if (!sale) throw new Error(`sale ${call.sale} was never made`);
        return { procedure: "flashSale.purchase", body: { userId: call.userId, activityId: sale.activityId, itemId: sale.itemIds[call.item] } };
      }
    }
  }

  /** The debit's transaction id as the ledger has it now; a debit that never applied gets an id no row has (TRANSACTION_NOT_FOUND). */
  private async refundBody(call: Extract<Call, { kind: "refund" }>): Promise<RefundBody> {
    const rows = await this.world.observer.$queryRaw<{ id: string }[]>`
      SELECT id::text FROM ledger_entries WHERE business_code = ${call.target.businessCode} AND business_id = ${call.target.businessId}`;
    const transactionId = rows[0]?.id ?? `00000000-0000-4000-8000-${String(call.id).padStart(12, "0")}`;
    return { transactionId, ...(call.amount === null ? {} : { amount: call.amount }), businessCode: call.businessCode, businessId: call.businessId };
  }
}

type Success = { transactionId?: string; orderId?: string };
type BatchItem = { ok: true; result: Success } | { ok: false; error: { appCode?: string } };

const successOf = (json: unknown): unknown => (json as { result?: { data?: unknown } } | null)?.result?.data;
const appCodeOf = (json: unknown): string | undefined => (json as { error?: { data?: { appCode?: string } } } | null)?.error?.data?.appCode;

/** The answers so far, and what they promise. */
export class Answers {
  private readonly byKey = new Map<string, { body: string; transactionId: string }>();
  private readonly byRequest = new Map<string, string[]>();
  private readonly orders = new Map<string, string>();
  /**
   * X-Request-Ids whose answer carried an INTERNAL a failpoint explained: a
   * batch's answer is recorded whole, per-item errors included, so its
   * replays carry that INTERNAL on after the failpoint is gone.
   */
  private readonly explainedIds = new Set<string>();
  /** appCode (or "ok") counts per call kind, for the report. */
  readonly tally = new Map<string, number>();

  /** Problems with one answer, and the changes it acknowledged. */
  judge(s: Send, body: unknown, answer: Answer, internalExplained: boolean): { problems: string[]; acked: Acked[] } {
    const { call } = s;
    const explained = internalExplained || (call.requestId !== null && this.explainedIds.has(call.requestId));
    const problems: string[] = [];
    const acked: Acked[] = [];
    const count = (outcome: string) => this.tally.set(`${call.kind} ${outcome}`, (this.tally.get(`${call.kind} ${outcome}`) ?? 0) + 1);
    const typed = (code: string | undefined, where: string) => {
      if (code === undefined || !KNOWN_CODES.has(code)) problems.push(`${where}: an untyped error (appCode ${String(code)})`);
      else if (code === "INTERNAL" && !explained) problems.push(`${where}: INTERNAL with no failpoint to explain it`);
      else if (code === "INTERNAL" && call.requestId) this.explainedIds.add(call.requestId);
    };
    if (answer.status === "unanswered") {
      count("unanswered");
      problems.push(answer.reason);
      return { problems, acked };
    }
    if (answer.status !== 200) {
      const code = appCodeOf(answer.json);
      count(code ?? `http ${answer.status}`);
      typed(code, `HTTP ${answer.status}`);
      return { problems, acked };
    }
    const data = successOf(answer.json);
    if (data === undefined) {
      problems.push(`HTTP 200 without a result: ${JSON.stringify(answer.json).slice(0, 200)}`);
      return { problems, acked };
    }
    count("ok");
    const ids: string[] = [];
    if (call.kind === "batchDeduct") {
      const items = (data as { items?: BatchItem[] }).items ?? [];
      if (items.length !== call.body.items.length) problems.push(`${items.length} answers for ${call.body.items.length} items`);
      items.forEach((item, k) => {
        const req = call.body.items[k]!;
        if (!item.ok) {
          typed(item.error.appCode, `item ${k}`);
          ids.push("");
          return;
        }
        const tx = item.result.transactionId ?? "";
        ids.push(tx);
        problems.push(...this.sameKey(`${req.businessCode}/${req.businessId}`, JSON.stringify(req), tx));
        acked.push({ transactionId: tx, type: "DEBIT", what: `item ${k} [${req.businessId}]` });
      });
    } else {
      const result = data as Success;
      const tx = result.transactionId ?? "";
      ids.push(tx);
      if (call.kind === "purchase") {
        const b = body as { userId: string; itemId: string };
        const pair = `${b.userId}/${b.itemId}`;
        const order = result.orderId ?? "";
        const first = this.orders.get(pair);
        if (first === undefined) this.orders.set(pair, order);
        else if (first !== order) problems.push(`buyer ${b.userId} was answered two orders of item ${b.itemId}: ${first} and ${order}`);
        ids.push(order);
        acked.push({ transactionId: tx, type: "DEBIT", orderId: order, what: `order ${order}` });
      } else {
        const key = call.kind === "refund" ? `${call.businessCode}/${call.businessId}` : `${call.body.businessCode}/${call.body.businessId}`;
        problems.push(...this.sameKey(key, JSON.stringify(body), tx));
        acked.push({ transactionId: tx, type: call.kind === "deduct" ? "DEBIT" : "CREDIT", what: `[${key}]` });
      }
    }
    if (call.requestId) problems.push(...this.sameReplay(call.requestId, ids));
    return { problems, acked };
  }

  /** One business key, one set of values, one transaction — whichever instance answered. */
  private sameKey(key: string, body: string, transactionId: string): string[] {
    const first = this.byKey.get(key);
    if (!first) {
      this.byKey.set(key, { body, transactionId });
      return [];
    }
    if (first.body !== body) return [`business key ${key} succeeded for two different requests: ${first.body} and ${body}`];
    if (first.transactionId !== transactionId) return [`business key ${key} was answered two transactions: ${first.transactionId} and ${transactionId}`];
    return [];
  }

  /** A replayed X-Request-Id answers what the first execution did (per batch item: those that succeeded both times). */
  private sameReplay(requestId: string, ids: string[]): string[] {
    const first = this.byRequest.get(requestId);
    if (!first) {
      this.byRequest.set(requestId, ids);
      return [];
    }
    const differ = ids.some((id, k) => id !== "" && first[k] !== "" && first[k] !== undefined && first[k] !== id);
    return differ ? [`X-Request-Id ${requestId} was answered differently: ${first.join(",")} then ${ids.join(",")}`] : [];
  }
}
