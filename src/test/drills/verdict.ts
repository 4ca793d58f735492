import { sqlOf } from "~/server/infra/sql";
import { checkInvariants, describeViolations, INVARIANTS } from "~/test/invariants";
import { batchItems, isFinal, outcomeOf, type BalanceBody, type Load, type LoadRequest, type LoadTarget } from "./load";

/**
 * After a drill: the worker is given time to settle the refund queue, then
 * every invariant of the architecture doc is checked over the whole database,
 * and every request the load sent is held against the books — what a client
 * was told is what happened, exactly once. One line per drill sums it up.
 */

export type DrillReport = { line: string; problems: string[] };

type Ack = { request: LoadRequest; transactionId: string; orderId?: string };

/** The transaction each 200 named (a batch: each applied item's), and the business keys of final refusals. */
function acknowledged(requests: readonly LoadRequest[]): { acks: Ack[]; refusedKeys: [string, string][]; problems: string[] } {
  const acks: Ack[] = [];
  const refusedKeys: [string, string][] = [];
  const problems: string[] = [];
  for (const r of requests) {
    const oks = r.answers.flatMap((a) => (a.kind === "answered" && a.status === 200 ? [a.data] : []));
    if (r.kind === "batchDeduct") {
      const items = (r.body as { items: BalanceBody[] }).items;
      const seen = new Map<number, string>();
      for (const data of oks) {
        batchItems(data).forEach((item, i) => {
          if (!item.ok) return;
          const before = seen.get(i);
          if (before && before !== item.result.transactionId) problems.push(`batch ${r.requestId} item ${i} was answered two transactions: ${before}, ${item.result.transactionId}`);
          seen.set(i, item.result.transactionId);
        });
      }
      for (const transactionId of seen.values()) acks.push({ request: r, transactionId });
      const last = r.answers.at(-1);
      if (last?.kind === "answered" && last.status === 200) {
        batchItems(last.data).forEach((item, i) => {
          const key = items[i];
          if (!item.ok && key && !seen.has(i)) refusedKeys.push([key.businessCode, key.businessId]);
        });
      }
      continue;
    }
    const ids = new Set(oks.map((d) => (d as { transactionId: string }).transactionId));
    if (ids.size > 1) problems.push(`${r.procedure} ${r.requestId} was answered ${ids.size} different transactions (${[...ids].join(", ")})`);
    const first = oks[0] as { transactionId: string; orderId?: string } | undefined;
    if (first) acks.push({ request: r, transactionId: first.transactionId, ...(first.orderId ? { orderId: first.orderId } : {}) });
    else if (isFinal(r.answers.at(-1)) && r.kind !== "purchase") {
      const body = r.body as { businessCode: string; businessId: string };
      refusedKeys.push([body.businessCode, body.businessId]);
    }
  }
  return { acks, refusedKeys, problems };
}

/** Waits until the queue has nothing due or retrying (the worker is running), up to `timeoutMs`. */
async function refundsSettled(stack: LoadTarget, timeoutMs: number): Promise<boolean> {
  const q = sqlOf(stack.observer).query;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = await q<{ n: number }>("SELECT count(*)::int AS n FROM refunds WHERE status IN ('PENDING', 'RETRYING')");
    if (row?.n === 0) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

export async function verdict(stack: LoadTarget, load: Load, fault: string, t0: number, extra: string[] = []): Promise<DrillReport> {
  const problems = [...extra];
  const requests = load.requests;
  const retried = await load.settle();
  const lost = requests.filter((r) => !isFinal(r.answers.at(-1)));
  for (const r of lost.slice(0, 5)) {
    const last = r.answers.at(-1);
    const said = last?.kind === "answered" && last.message ? ` (last: "${last.message}")` : "";
    problems.push(`no final answer for ${r.procedure} ${r.requestId} after ${r.answers.length} tries: ${r.answers.slice(0, 4).map(outcomeOf).join(" → ")} …${said}`);
  }
  if (lost.length > 5) problems.push(`… ${lost.length - 5} more without a final answer`);
  const answers = requests.flatMap((r) => r.answers);
  const unanswered = answers.filter((a) => a.kind === "timeout");
  if (unanswered.length > 0) problems.push(`${unanswered.length} calls got no answer within the client's timeout`);

  if (!(await refundsSettled(stack, 45_000))) problems.push("refunds still PENDING or RETRYING 45 s after the load");

  // What clients were told, against the books.
  const { acks, refusedKeys, problems: told } = acknowledged(requests);
  problems.push(...told);
  const q = sqlOf(stack.observer).query;
  const ledger = new Set((await q<{ id: string }>("SELECT id::text FROM ledger_entries WHERE id = ANY($1::uuid[])", [acks.map((a) => a.transactionId)])).map((r) => r.id));
  const missing = acks.filter((a) => !ledger.has(a.transactionId));
  for (const a of missing.slice(0, 5)) problems.push(`${a.request.procedure} ${a.request.requestId} was answered ${a.transactionId}, which is not in the ledger`);
  const orders = acks.filter((a) => a.orderId);
  const found = new Set(
    (await q<{ id: string }>("SELECT id::text FROM flash_sale_orders WHERE id = ANY($1::uuid[])", [orders.map((a) => a.orderId)])).map((r) => r.id),
  );
  for (const a of orders.filter((o) => !found.has(o.orderId!)).slice(0, 5)) problems.push(`purchase ${a.request.requestId} was answered order ${a.orderId}, which does not exist`);
  if (refusedKeys.length > 0) {
    const applied = await q<{ key: string }>(
      "SELECT business_code || '/' || business_id AS key FROM ledger_entries WHERE (business_code, business_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
      [refusedKeys.map((k) => k[0]), refusedKeys.map((k) => k[1])],
    );
    for (const a of applied.slice(0, 5)) problems.push(`${a.key} was refused for good, yet applied`);
  }

  const violations = await checkInvariants(stack.observer, { settled: true });
  if (violations.length > 0) problems.push(`invariants broken:\n${describeViolations(violations)}`);

  // The line: requests by outcome (first answers, then after the retries).
  const tally = new Map<string, number>();
  for (const a of answers) if (a.during !== "settle") tally.set(outcomeOf(a), (tally.get(outcomeOf(a)) ?? 0) + 1);
  const byOutcome = [...tally.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n.toLocaleString("en-US")}`).join(", ");
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  const held = violations.length === 0 ? `${INVARIANTS.length}/${INVARIANTS.length} held` : `${violations.length} BROKEN`;
  const line = `${fault} | ${requests.length.toLocaleString("en-US")} requests; answers: ${byOutcome} | retried to a final answer: ${retried} | unanswered: ${unanswered.length} | lost: ${lost.length} | invariants ${held} | ${seconds} s`;
  return { line, problems };
}
