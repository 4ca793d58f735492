import { checkInvariants, describeViolations } from "~/test/invariants";
import { stuckAfterMs } from "~/server/credit/abandoned-operations";
import { Answers, Caller, type Acked } from "./calls";
import { applyFault, initialFaultState, internalExplained, resumeRedis, settle } from "./faults";
import { Generator } from "./generator";
import { Prng } from "./prng";
import { describeStep, type Send, type Step } from "./steps";
import { createWorld, type World } from "./world";

/**
 * The seeded simulation: from a seed, N steps against two real instances —
 * bursts of concurrent calls on a few users, and faults — with every answer
 * judged and the invariants checked after every step; at the end everything
 * is settled and checked once more, as "eventually" demands. A failure names
 * the seed, the step and the steps before it, so `SEED=<n>` replays it.
 */

export type SimOptions = {
  seed: number;
  steps: number;
  /**
   * Check the invariants after every `checkEvery` steps (1: after each). The
   * check reads whole tables, so a long soak spaces it out; a broken
   * invariant stays broken in the books, so it is still found, within
   * `checkEvery` steps of its cause.
   */
  checkEvery?: number;
  /** Progress lines (the seed first of all). */
  log: (line: string) => void;
  /** A unique tag for this run's process names. */
  runTag: string;
};

export type SimReport = { seed: number; steps: number; ms: number; calls: number; tally: Map<string, number> };

/** A step that takes longer than this hangs (every call is bounded well below it). */
const STEP_TIMEOUT_MS = 60_000;
/** Steps shown before the failing one. */
const HISTORY = 12;
/** Users the calls aim at: few, so both instances contend for the same accounts. */
const USERS = ["u0", "u1", "u2", "u3"];

export class SimulationFailure extends Error {
  override name = "SimulationFailure";
}

export async function runSimulation(opts: SimOptions): Promise<SimReport> {
  const { seed, steps } = opts;
  const checkEvery = opts.checkEvery ?? 1;
  const knobs = `SEED=${seed} SIM_STEPS=${steps}${checkEvery > 1 ? ` SIM_CHECK_EVERY=${checkEvery}` : ""}`;
  opts.log(`${knobs}: simulation starting`);
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  const history: string[] = [];
  const fail = (n: number, what: string, detail: string): never => {
    throw new SimulationFailure(
      [
        `SEED=${seed} failed at step ${n} of ${steps}, ${elapsed()} in: ${what}`,
        detail,
        `the steps before it:`,
        ...history.slice(-Math.max(HISTORY, checkEvery) - 1, -1),
        `replay: ${knobs} npm run test:sim`,
        ...(checkEvery > 1 ? [`(invariants were checked every ${checkEvery} steps: SEED=${seed} SIM_STEPS=${n} npm run test:sim checks after each)`] : []),
      ].join("\n"),
    );
  };

  let world: World | undefined;
  const state = initialFaultState();
  try {
    world = await createWorld({ users: USERS, runTag: opts.runTag });
    const w = world;
    const generator = new Generator(new Prng(seed), USERS, w.creditTypeId);
    const caller = new Caller(w);
    const answers = new Answers();
    let calls = 0;

    const runStep = async (n: number, step: Step): Promise<string[]> => {
      const problems: string[] = [];
      const acked: Acked[] = [];
      const burst = async (sends: readonly Send[]) => {
        calls += sends.length;
        await Promise.all(
          sends.map(async (s) => {
            const { answer, body } = await caller.send(s);
            const judged = answers.judge(s, body, answer, internalExplained(state, s.call.instance));
            problems.push(...judged.problems.map((p) => `${s.call.kind} #${s.call.id} on ${w.instances[s.call.instance].name}: ${p}`));
            acked.push(...judged.acked);
          }),
        );
      };
      const notes = step.kind === "burst" ? (await burst(step.sends), []) : await applyFault(w, state, step, burst);
      if (notes.length > 0) history[history.length - 1] += ` (${notes.join("; ")})`;
      problems.push(...(await missingAcked(w, acked)));
      if (n % checkEvery === 0) {
        const violations = await checkInvariants(w.observer);
        if (violations.length > 0) problems.push(`invariants violated:\n${describeViolations(violations)}`);
      }
      return problems;
    };

    const step = async (n: number, s: Step) => {
      history.push(`#${n}: ${describeStep(s)}`);
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the step did not finish within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
      });
      let problems: string[];
      try {
        problems = await Promise.race([runStep(n, s), hang]);
      } catch (e) {
        problems = [e instanceof Error ? (e.stack ?? e.message) : String(e)];
      } finally {
        clearTimeout(timer);
      }
      if (problems.length > 0) fail(n, describeStep(s), problems.join("\n"));
    };

    await step(0, generator.firstSale());
    for (let n = 1; n <= steps; n++) {
      await step(n, generator.next());
      if (n % 500 === 0) opts.log(`SEED=${seed}: step ${n} of ${steps}, ${calls} calls, ${elapsed()}`);
    }

    history.push(`#end: settle (failpoints cleared, Redis up, refund queue drained, abandoned operations resolved)`);
    try {
      await settle(w, state);
    } catch (e) {
      fail(steps + 1, "settling", e instanceof Error ? (e.stack ?? e.message) : String(e));
    }
    const bound = stuckAfterMs(w.instances[0].deps.env) + 2000;
    const final = await checkInvariants(w.observer, { settled: true, startedBoundMs: bound });
    if (final.length > 0) fail(steps + 1, "the settled books", `invariants violated once settled:\n${describeViolations(final)}`);

    const ms = performance.now() - started;
    opts.log(`SEED=${seed}: ${steps} steps, ${calls} calls, settled and checked in ${elapsed()}`);
    return { seed, steps, ms, calls, tally: answers.tally };
  } finally {
    if (world) {
      resumeRedis(world, state);
      await world.close();
    }
  }
}

/** Every change the service acknowledged is in the ledger (and every order it answered exists). */
async function missingAcked(world: World, acked: readonly Acked[]): Promise<string[]> {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const malformed = acked.filter((a) => !uuid.test(a.transactionId)).map((a) => `${a.what} was answered without a transaction id`);
  const ids = [...new Set(acked.map((a) => a.transactionId).filter((id) => uuid.test(id)))];
  if (ids.length === 0) return malformed;
  const rows = await world.observer.$queryRaw<{ id: string; type: string; order_id: string | null }[]>`
    SELECT l.id::text, l.type::text, o.id::text AS order_id
      FROM ledger_entries l LEFT JOIN flash_sale_orders o ON o.transaction_id = l.id
     WHERE l.id = ANY(${ids}::uuid[])`;
  const found = new Map(rows.map((r) => [r.id, r]));
  return [...malformed, ...acked.filter((a) => uuid.test(a.transactionId)).flatMap((a) => {
    const row = found.get(a.transactionId);
    if (!row) return [`${a.what} was answered with transaction ${a.transactionId}, which is not in the ledger`];
    if (row.type !== a.type) return [`${a.what} was answered as a ${a.type}, but transaction ${a.transactionId} is a ${row.type}`];
    if (a.orderId !== undefined && row.order_id !== a.orderId) return [`${a.what} was answered, but its debit ${a.transactionId} pays for ${row.order_id ?? "no order"}`];
    return [];
  })];
}
