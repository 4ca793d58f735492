import type { Prng } from "./prng";
import type { Call, ChangeBody, DebitKey, FailpointSpec, Instance, Send, Step, WorkerTask } from "./steps";

/**
 * Makes the simulation's steps from the PRNG and its own bookkeeping only —
 * never from what the service answered — so the sequence is a pure function
 * of the seed. Bursts aim a mix of calls at a few users from both instances
 * at once (they contend for the same accounts); faults come and go for a
 * number of steps each.
 */

/** The failpoints the simulation sets, with how each is triggered. */
const FAILPOINTS: { name: string; action: (rng: Prng) => string; steps: number }[] = [
  { name: "credit.afterCommit", action: () => "error", steps: 20 },
  { name: "credit.beforeCommit", action: () => "error", steps: 20 },
  // Past LOCK_TTL_MS (500 ms) as often as not: the lock runs out under the
  // batch. For a few steps only, as it slows every debit of the instance.
  { name: "credit.beforeCommit", action: (rng) => `delay:${rng.int(100, 900)}`, steps: 5 },
  { name: "flashSale.afterDebit", action: () => "error", steps: 20 },
  { name: "refund.apply", action: () => "error", steps: 20 },
];

const STEP_WEIGHTS = { burst: 140, failpoint: 12, redisKill: 3, redisBounce: 2, redisPause: 4, pgTerminate: 6, worker: 16 } as const;
const CALL_WEIGHTS = { grant: 18, deduct: 34, batchDeduct: 10, refund: 10, purchase: 14, repeatRequest: 8, repeatKey: 6 } as const;

/** How many earlier calls repeats and refunds choose from. */
const MEMORY = 400;

type ActiveFailpoint = FailpointSpec & { untilStep: number };

export class Generator {
  private step = 0;
  private nextCallId = 1;
  private readonly recent: Call[] = [];
  private readonly debits: DebitKey[] = [];
  private readonly failpoints: [ActiveFailpoint[], ActiveFailpoint[]] = [[], []];
  private redisDownUntil: number | null = null;
  /** Item counts of the sales made so far. */
  private readonly sales: number[] = [];
  private nextSaleAt = 0;

  constructor(
    private readonly rng: Prng,
    private readonly users: readonly string[],
    private readonly creditTypeId: string,
  ) {}

  /** The sale every run starts with (step 0). */
  firstSale(): Step {
    return this.newSale();
  }

  next(): Step {
    this.step++;
    if (this.redisDownUntil !== null && this.step >= this.redisDownUntil) {
      this.redisDownUntil = null;
      return { kind: "redisRestart" };
    }
    for (const i of [0, 1] as const) {
      const live = this.failpoints[i].filter((f) => f.untilStep > this.step);
      if (live.length !== this.failpoints[i].length) {
        this.failpoints[i] = live;
        return this.failpointStep(i);
      }
    }
    const redisUp = this.redisDownUntil === null;
    if (this.step >= this.nextSaleAt && redisUp) return this.newSale();

    const kind = this.rng.weighted({
      ...STEP_WEIGHTS,
      redisKill: redisUp ? STEP_WEIGHTS.redisKill : 0,
      redisBounce: redisUp ? STEP_WEIGHTS.redisBounce : 0,
      redisPause: redisUp ? STEP_WEIGHTS.redisPause : 0,
    });
    switch (kind) {
      case "burst":
        return { kind: "burst", sends: this.burst() };
      case "failpoint": {
        const i = this.instance();
        const fp = this.rng.pick(FAILPOINTS);
        const spec = { name: fp.name, action: fp.action(this.rng), untilStep: this.step + this.rng.int(1, fp.steps) };
        this.failpoints[i] = [...this.failpoints[i].filter((f) => f.name !== spec.name), spec];
        return this.failpointStep(i);
      }
      case "redisKill":
        this.redisDownUntil = this.step + this.rng.int(1, 6);
        return { kind: "redisKill" };
      case "redisBounce":
        return { kind: "redisBounce" };
      case "redisPause":
        return { kind: "redisPause", ms: this.rng.int(100, 600), sends: this.burst() };
      case "pgTerminate":
        return { kind: "pgTerminate", instance: this.instance(), afterMs: this.rng.int(0, 40), sends: this.burst() };
      case "worker": {
        const tasks: WorkerTask[] = ["refunds"];
        for (const t of ["sweep", "reconcile", "resolve"] as const) if (this.rng.chance(0.5)) tasks.push(t);
        return { kind: "worker", instance: this.instance(), tasks };
      }
    }
  }

  private failpointStep(i: Instance): Step {
    return { kind: "failpoints", instance: i, points: this.failpoints[i].map(({ name, action }) => ({ name, action })) };
  }

  private newSale(): Step {
    this.nextSaleAt = this.step + this.rng.int(80, 200);
    const items = [0, 1].map(() => ({ stock: this.rng.int(1, 5), price: this.rng.int(3, 15) }));
    this.sales.push(items.length);
    return { kind: "newSale", sale: this.sales.length - 1, items };
  }

  private instance(): Instance {
    return this.rng.chance(0.5) ? 0 : 1;
  }

  private user(): string {
    return this.rng.pick(this.users);
  }

  private requestId(id: number): string | null {
    return this.rng.chance(0.5) ? `r${id}` : null;
  }

  private change(businessCode: string, businessId: string, amount: number): ChangeBody {
    return { userId: this.user(), creditTypeId: this.creditTypeId, amount, businessCode, businessId };
  }

  /** 2–10 calls at once, spread over both instances; now and then one of them twice. */
  private burst(): Send[] {
    const sends: Send[] = [];
    const size = this.rng.int(2, 10);
    for (let n = 0; n < size; n++) sends.push(this.send());
    if (this.rng.chance(0.15)) {
      const twin = this.rng.pick(sends);
      sends.push({ call: { ...twin.call, instance: this.instance() }, repeat: true });
    }
    return sends;
  }

  private remember(call: Call): Call {
    this.recent.push(call);
    if (this.recent.length > MEMORY) this.recent.shift();
    const debits = call.kind === "deduct" ? [call.body] : call.kind === "batchDeduct" ? call.body.items : [];
    for (const d of debits) {
      this.debits.push({ businessCode: d.businessCode, businessId: d.businessId, amount: d.amount });
      if (this.debits.length > MEMORY) this.debits.shift();
    }
    return call;
  }

  private send(): Send {
    const kind = this.rng.weighted(CALL_WEIGHTS);
    if (kind === "repeatRequest") {
      const withId = this.recent.filter((c) => c.requestId !== null);
      if (withId.length > 0) return { call: { ...this.rng.pick(withId), instance: this.instance() }, repeat: true };
    }
    if (kind === "repeatKey") {
      const keyed = this.recent.filter((c) => c.kind === "grant" || c.kind === "deduct" || c.kind === "refund");
      if (keyed.length > 0) return { call: this.remember(this.sameKey(this.rng.pick(keyed))), repeat: false };
    }
    const id = this.nextCallId++;
    const base = { id, instance: this.instance(), requestId: this.requestId(id) };
    switch (kind) {
      case "grant":
        return { call: this.remember({ ...base, kind: "grant", body: this.change("sim.grant", `g${id}`, this.rng.int(5, 60)) }), repeat: false };
      case "batchDeduct": {
        const items = Array.from({ length: this.rng.int(2, 5) }, (_, k) => this.change("sim.debit", `b${id}-${k}`, this.rng.int(1, 25)));
        // An earlier deduction's key inside the batch, or one key twice in it: answered as repeats.
        const earlier = this.recent.filter((c) => c.kind === "deduct");
        if (earlier.length > 0 && this.rng.chance(0.2)) {
          const e = this.rng.pick(earlier);
          if (e.kind === "deduct") items.push(e.body);
        }
        if (this.rng.chance(0.1)) items.push(this.rng.pick(items));
        return { call: this.remember({ ...base, kind: "batchDeduct", body: { items } }), repeat: false };
      }
      case "refund":
        if (this.debits.length > 0) {
          const target = this.rng.pick(this.debits);
          const amount = this.rng.chance(0.5) ? null : this.rng.int(1, target.amount);
          return { call: this.remember({ ...base, kind: "refund", target, amount, businessCode: "sim.refund", businessId: `f${id}` }), repeat: false };
        }
        break;
      case "purchase": {
        // Mostly the newest sale; now and then the one before (sold out, or a buyer's repeat).
        const sale = this.sales.length > 1 && this.rng.chance(0.2) ? this.sales.length - 2 : this.sales.length - 1;
        const item = this.rng.int(0, (this.sales[sale] ?? 1) - 1);
        return { call: this.remember({ ...base, kind: "purchase", userId: this.user(), sale, item }), repeat: false };
      }
      default:
        break;
    }
    return { call: this.remember({ ...base, kind: "deduct", body: this.change("sim.debit", `d${id}`, this.rng.int(1, 25)) }), repeat: false };
  }

  /** A new call under an earlier call's business key: the same values (a repeat), or now and then another amount (a reuse). */
  private sameKey(of: Call): Call {
    const id = this.nextCallId++;
    const base = { id, instance: this.instance(), requestId: this.requestId(id) };
    if (of.kind === "grant" || of.kind === "deduct") {
      const amount = this.rng.chance(0.25) ? of.body.amount + 1 : of.body.amount;
      return { ...base, kind: of.kind, body: { ...of.body, amount } };
    }
    if (of.kind === "refund") return { ...of, ...base };
    throw new Error(`no business key to repeat on a ${of.kind}`);
  }
}
