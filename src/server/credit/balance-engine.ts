import { randomUUID } from "node:crypto";
import type { Deps } from "~/server/infra/deps";
import type { Db } from "~/server/infra/db";
import { AppError } from "~/server/infra/app-error";
import { counterOf } from "~/server/infra/metrics";
import { sqlOf, type SqlRunner } from "~/server/infra/sql";
import { accountLockKey } from "~/server/resilience/lock";
import { abandonItems, applyBatch, type EngineItem, type ItemOutcome } from "./apply-batch";
import type { BalanceChange } from "./types";

export type { ItemOutcome };

/**
 * The balance engine of one process: every balance change (grants,
 * deductions, and the debits and refunds built on them) is submitted here and
 * answered on its own, but applied in batches (apply-batch.ts).
 *
 * Natural batching: when a batch slot is free, what is waiting goes at once
 * (no timer, no wait when idle); while every slot is busy, arrivals collect
 * and go together in the next batch, up to BALANCE_BATCH_MAX. An account is
 * in at most one batch at a time, so its changes apply in arrival order, and
 * a slow batch never holds up other accounts while a slot is free (nor its own
accounts past LOCK_TTL_MS). A change
 * that could not start within LOCK_WAIT_MS is answered OPERATION_LOCKED (its
 * account stayed busy) or UNAVAILABLE (the engine was full), with a hint.
 */

type Waiting = {
  item: EngineItem;
  deadline: number;
  timer: NodeJS.Timeout | null;
  /** Its account was found held by another instance at least once. */
  heldElsewhere: boolean;
  resolve: (o: ItemOutcome) => void;
};

/** Pauses before another try at an account another instance holds: short at first, then longer. */
const LOCK_RETRY_FIRST_MS = 10;
const LOCK_RETRY_MAX_MS = 160;

export class BalanceEngine {
  private pending: Waiting[] = [];
  /** Lock keys of the accounts in a running batch, and which batch has each. */
  private readonly busy = new Map<string, symbol>();
  /** Accounts another instance holds: not before this time (ms), and how often missed. */
  private readonly cooling = new Map<string, { until: number; misses: number }>();
  private running = 0;
  private pumpQueued = false;
  private wake: NodeJS.Timeout | null = null;
  /** Moving average of a batch's duration (ms), for retry hints. */
  private batchMs = 5;
  /** Batches run and changes they carried, since the engine started. */
  readonly stats = { batches: 0, changes: 0 };
  private readonly batchesTotal;
  private readonly changesTotal;

  constructor(
    private readonly deps: Deps,
    private readonly limits: { batchMax: number; inFlight: number },
    /** Where the batches' statements run (the pg pool by default; docs/architecture.md says why). */
    private readonly sql: SqlRunner = sqlOf(deps.db),
  ) {
    const registry = deps.metrics.registry;
    this.batchesTotal = counterOf(registry, "fp_balance_batches_total", "Batches the balance engine ran (one transaction each)", []);
    this.changesTotal = counterOf(registry, "fp_balance_changes_total", "Balance changes the engine's batches carried (changes / batches = batch size)", []);
  }

  /**
   * Applies one change. `waitMs` bounds how long it may wait for its account
   * (LOCK_WAIT_MS unless the caller would rather wait longer). Resolves with
   * its result or its typed error, never rejects.
   */
  submit(change: BalanceChange, opts: { waitMs?: number } = {}): Promise<ItemOutcome> {
    const waitMs = opts.waitMs ?? this.deps.env.LOCK_WAIT_MS;
    return new Promise((resolve) => {
      const item: EngineItem = {
        change,
        submittedAt: this.deps.clock.now(),
        operationId: randomUUID(),
        transactionId: randomUUID(),
        lockKey: accountLockKey(change.request.userId, change.request.creditTypeId),
      };
      const waiting: Waiting = { item, deadline: Date.now() + waitMs, timer: null, heldElsewhere: false, resolve };
      this.arm(waiting);
      this.pending.push(waiting);
      this.schedule();
    });
  }

  private arm(w: Waiting): void {
    const left = w.deadline - Date.now();
    w.timer = setTimeout(() => this.expire(w), Math.max(0, left));
    w.timer.unref();
  }

  private expire(w: Waiting): void {
    const i = this.pending.indexOf(w);
    if (i < 0) return;
    this.pending.splice(i, 1);
    const key = w.item.lockKey;
    // Held elsewhere even if its pause just ended and the pump has not come round to it yet.
    const accountBusy = w.heldElsewhere || this.busy.has(key) || (this.cooling.get(key)?.until ?? 0) > Date.now();
    const hint = Math.round(Math.min(5000, Math.max(50, 4 * this.batchMs)) * (0.5 + Math.random()));
    this.giveUp(
      [w],
      accountBusy
        ? new AppError("OPERATION_LOCKED", "the account is busy with other changes; retry shortly", { retryAfterMs: hint })
        : new AppError("UNAVAILABLE", "this instance has more balance changes waiting than it can start; retry shortly", {
            retryAfterMs: hint,
            details: { overload: "engine" },
          }),
    );
  }

  /** Answers changes that will not run with `error`, and records their operations as failed with it. */
  private giveUp(ws: Waiting[], error: AppError): void {
    if (ws.length === 0) return;
    for (const w of ws) w.resolve({ ok: false, error });
    void abandonItems(this.deps, ws.map((w) => w.item), error, this.sql);
  }

  /** Pumps once the current tick is over, so changes that arrive together go together. */
  private schedule(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.limits.inFlight && this.pending.length > 0) {
      const now = Date.now();
      const batch: Waiting[] = [];
      const keys = new Set<string>();
      const rest: Waiting[] = [];
      for (const w of this.pending) {
        const key = w.item.lockKey;
        const free = !this.busy.has(key) && (this.cooling.get(key)?.until ?? 0) <= now;
        if (batch.length < this.limits.batchMax && free) {
          batch.push(w);
          keys.add(key);
        } else rest.push(w);
      }
      if (batch.length === 0) break;
      this.pending = rest;
      const owner = Symbol("batch");
      for (const key of keys) this.busy.set(key, owner);
      for (const w of batch) if (w.timer) clearTimeout(w.timer);
      this.running++;
      void this.run(batch, keys, owner);
    }
    this.wakeForCooling();
  }

  /** If everything waiting is on accounts held elsewhere, pump again when the first may be free. */
  private wakeForCooling(): void {
    if (this.wake || this.pending.length === 0 || this.running >= this.limits.inFlight) return;
    const now = Date.now();
    let first = Infinity;
    for (const w of this.pending) first = Math.min(first, this.cooling.get(w.item.lockKey)?.until ?? now);
    if (!Number.isFinite(first)) return;
    this.wake = setTimeout(() => {
      this.wake = null;
      this.pump();
    }, Math.max(1, first - now));
    this.wake.unref();
  }

  private free(keys: Set<string>, owner: symbol): void {
    for (const key of keys) if (this.busy.get(key) === owner) this.busy.delete(key);
  }

  private async run(batch: Waiting[], keys: Set<string>, owner: symbol): Promise<void> {
    const started = performance.now();
    // A batch holds its accounts no longer than a lock would (LOCK_TTL_MS): a
    // stalled one does not block them, and the versioned update fences the
    // next batch's writes if the stalled one commits after all.
    const expiry = setTimeout(() => {
      this.free(keys, owner);
      this.pump();
    }, this.deps.env.LOCK_TTL_MS);
    expiry.unref();
    const byItem = new Map(batch.map((w) => [w.item, w]));
    try {
      this.stats.batches++;
      this.stats.changes += batch.length;
      this.batchesTotal.inc();
      this.changesTotal.inc(batch.length);
      const { outcomes, deferred } = await applyBatch(this.deps, batch.map((w) => w.item), this.sql);
      for (const [item, outcome] of outcomes) {
        byItem.get(item)?.resolve(outcome);
        this.cooling.delete(item.lockKey);
      }
      this.defer(deferred.flatMap((item) => byItem.get(item) ?? []));
    } catch (e) {
      // applyBatch answers every item itself; this is a bug, answered as one.
      const error = new AppError("INTERNAL", "the balance change failed", { cause: e });
      for (const w of batch) w.resolve({ ok: false, error });
    } finally {
      this.batchMs = 0.8 * this.batchMs + 0.2 * (performance.now() - started);
      clearTimeout(expiry);
      this.running--;
      this.free(keys, owner);
      this.pump();
    }
  }

  /** Back in front of the queue, in their order, with their accounts cooling off. */
  private defer(items: Waiting[]): void {
    if (items.length === 0) return;
    const now = Date.now();
    if (this.cooling.size > 10_000) {
      for (const [key, c] of this.cooling) if (c.until < now) this.cooling.delete(key);
    }
    for (const w of items) {
      w.heldElsewhere = true;
      const prev = this.cooling.get(w.item.lockKey);
      if (prev && prev.until > now) continue;
      const misses = (prev?.misses ?? 0) + 1;
      const step = Math.min(LOCK_RETRY_MAX_MS, LOCK_RETRY_FIRST_MS * 2 ** (misses - 1));
      this.cooling.set(w.item.lockKey, { until: now + Math.round(step * (0.5 + Math.random())), misses });
    }
    const late = items.filter((w) => w.deadline <= now);
    this.giveUp(
      late,
      new AppError("OPERATION_LOCKED", "the account is busy on another instance; retry shortly", {
        retryAfterMs: Math.round(LOCK_RETRY_MAX_MS * (0.5 + Math.random())),
      }),
    );
    const live = items.filter((w) => w.deadline > now);
    for (const w of live) this.arm(w);
    this.pending = [...live, ...this.pending];
  }
}

// One engine per database client, i.e. per process (tests make several).
const engines = new WeakMap<Db, BalanceEngine>();

export function balanceEngine(deps: Deps): BalanceEngine {
  let engine = engines.get(deps.db);
  if (!engine) {
    engine = new BalanceEngine(deps, { batchMax: deps.env.BALANCE_BATCH_MAX, inFlight: deps.env.BALANCE_BATCHES_IN_FLIGHT });
    engines.set(deps.db, engine);
  }
  return engine;
}
