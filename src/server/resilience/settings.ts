import { performance } from "node:perf_hooks";
import { z } from "zod";
import type { Deps } from "~/server/infra/deps";
import { Prisma } from "~/server/infra/db";
import { AppError } from "~/server/infra/app-error";
import { writeAudit, type AuditEntry } from "~/server/audit/audit-log";
import { resilienceMetrics } from "./resilience-metrics";

/**
 * Live settings: rate limits, circuit thresholds, forced circuit states and
 * degradation switches. Postgres (`settings`) is the truth; each process keeps
 * a cache that is
 *  - updated at once by the instance that made a change,
 *  - pushed to every other instance over Redis pub/sub
 *    (`${REDIS_KEY_PREFIX}settings`) when `startSettingsSync` runs (the HTTP
 *    server and the worker start it),
 *  - reloaded from Postgres every few seconds as a fallback for lost messages,
 *    and lazily (at most once a second) where no sync runs (tests, scripts).
 * The hot path only reads the cache: no Postgres or Redis round trip.
 */

export const CIRCUIT_NAMES = ["credit.deduct", "flashSale.purchase"] as const;
export type CircuitName = (typeof CIRCUIT_NAMES)[number];
export const ZCircuitName = z.enum(CIRCUIT_NAMES);

export const CIRCUIT_STATES = ["CLOSED", "OPEN", "HALF_OPEN"] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];
export const ZCircuitState = z.enum(CIRCUIT_STATES);

/** Degradation switches: `on` is normal service; an operator turns one off to shed that work. */
export const SWITCHES = {
  ledgerReads: {
    default: true,
    description: "credit.ledger history reads. Off: 503 DEGRADED, saving Postgres for balance changes.",
  },
  outboxRelay: {
    default: true,
    description: "The worker's outbox relay. Off: it idles; committed events wait in Postgres until it is on again.",
  },
  flashSaleCacheOnly: {
    default: false,
    description: "On: flashSale.activity answers from the Redis cache only and never reads Postgres.",
  },
  flashSalePurchases: {
    default: true,
    description: "flashSale.purchase. Off: every purchase answers 503 DEGRADED (all sales paused).",
  },
  rateLimitFailClosed: {
    default: false,
    description:
      "On: while Redis is unreachable the rate limiter refuses calls (503 UNAVAILABLE). Off (default): it lets them through, counted as fail_open.",
  },
} as const satisfies Record<string, { default: boolean; description: string }>;
export type SwitchName = keyof typeof SWITCHES;
export const SWITCH_NAMES = Object.keys(SWITCHES) as [SwitchName, ...SwitchName[]];
export const ZSwitchName = z.enum(SWITCH_NAMES);

export const ZRateLimits = z
  .object({
    perSecond: z.number().positive().max(1_000_000),
    burst: z.number().int().min(1).max(1_000_000),
  })
  .strict();
export type RateLimits = z.infer<typeof ZRateLimits>;

export const ZCircuitConfig = z
  .object({
    /** Infrastructure failures within `windowMs` that open a closed breaker. */
    errorThreshold: z.number().int().min(1).max(1_000_000),
    windowMs: z.number().int().min(1_000).max(86_400_000),
    /** How long OPEN refuses everything before HALF_OPEN. */
    openMs: z.number().int().min(1_000).max(86_400_000),
    /** How long HALF_OPEN waits for a probe's verdict before closing. */
    halfOpenMs: z.number().int().min(1_000).max(86_400_000),
    /** Share of HALF_OPEN calls let through as probes. */
    probeRatio: z.number().min(0.001).max(1),
  })
  .strict();
export type CircuitConfig = z.infer<typeof ZCircuitConfig>;

export const DEFAULT_CIRCUIT_CONFIG: CircuitConfig = {
  errorThreshold: 10,
  windowMs: 60_000,
  openMs: 30_000,
  halfOpenMs: 120_000,
  probeRatio: 0.1,
};

export const ZForcedCircuit = z.object({
  state: ZCircuitState,
  reason: z.string(),
  by: z.string(),
  at: z.string(),
});
export type ForcedCircuit = z.infer<typeof ZForcedCircuit>;

/** What each settings row may hold. Unknown names inside a record are ignored, not fatal. */
const SCHEMAS = {
  rateLimit: ZRateLimits,
  circuit: ZCircuitConfig.partial(),
  circuitForced: z.record(z.string(), ZForcedCircuit),
  switches: z.record(z.string(), z.boolean()),
} as const;
export type SettingKey = keyof typeof SCHEMAS;
export const SETTING_KEYS = Object.keys(SCHEMAS) as SettingKey[];
export type SettingValue<K extends SettingKey> = z.infer<(typeof SCHEMAS)[K]>;

export type SettingEntry<K extends SettingKey> = {
  /** Undefined when no row exists (or it is unreadable): defaults apply. */
  value: SettingValue<K> | undefined;
  version: number;
  updatedBy: string | null;
  updatedAt: string | null;
};

/** Where no sync runs, the cache is refreshed when older than this. */
export const LAZY_MAX_AGE_MS = 1_000;
/** Fallback reload while syncing (pub/sub carries changes within ms). */
export const SYNC_RELOAD_MS = 5_000;

export function settingsChannel(env: Deps["env"]): string {
  return `${env.REDIS_KEY_PREFIX}settings`;
}

function parseValue<K extends SettingKey>(key: K, raw: unknown, deps: Pick<Deps, "log">): SettingValue<K> | undefined {
  if (raw === null || raw === undefined) return undefined;
  const parsed = SCHEMAS[key].safeParse(raw);
  if (!parsed.success) {
    deps.log.warn({ key, issues: parsed.error.issues }, "unreadable settings row; defaults apply");
    return undefined;
  }
  return parsed.data as SettingValue<K>;
}

type Entries = { [K in SettingKey]?: SettingEntry<K> };

export class LiveSettings {
  private entries: Entries = {};
  /** When each entry was applied (performance.now()), to tell a deleted row from one a reload could not see yet. */
  private appliedAt = new Map<SettingKey, number>();
  private first: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private loadedAt = -Infinity;
  private lastFailureLog = -Infinity;
  /** True while `startSettingsSync` keeps this cache current. */
  syncing = false;

  constructor(private readonly deps: Deps) {
    this.updateSwitchGauges();
  }

  /** Resolves once the first load finished (or failed: defaults then apply). */
  async ready(): Promise<this> {
    if (this.loadedAt === -Infinity) {
      this.first ??= this.reload();
      await this.first;
    } else if (!this.syncing && performance.now() - this.loadedAt > LAZY_MAX_AGE_MS) {
      // Stale-while-revalidate: this call uses what is cached.
      void this.reload();
    }
    return this;
  }

  get<K extends SettingKey>(key: K): SettingEntry<K> {
    return (this.entries[key] as SettingEntry<K> | undefined) ?? { value: undefined, version: 0, updatedBy: null, updatedAt: null };
  }

  /** Applies a value unless the cache already holds a newer version. */
  apply<K extends SettingKey>(key: K, raw: unknown, version: number, updatedBy: string | null, updatedAt: string | null): boolean {
    const current = this.entries[key];
    if (current && version < current.version) return false;
    const entry: SettingEntry<K> = { value: parseValue(key, raw, this.deps), version, updatedBy, updatedAt };
    (this.entries as Record<SettingKey, SettingEntry<SettingKey>>)[key] = entry as SettingEntry<SettingKey>;
    this.appliedAt.set(key, performance.now());
    if (key === "switches") this.updateSwitchGauges();
    return true;
  }

  /** Reads every settings row from Postgres (the truth). Never throws. */
  reload(): Promise<void> {
    this.refreshing ??= this.load().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async load(): Promise<void> {
    const started = performance.now();
    try {
      const rows = await this.deps.db.setting.findMany({ where: { key: { in: SETTING_KEYS } } });
      const seen = new Set<string>();
      for (const row of rows) {
        if (!(SETTING_KEYS as string[]).includes(row.key)) continue;
        seen.add(row.key);
        this.apply(row.key as SettingKey, row.value, row.version, row.updatedBy, row.updatedAt.toISOString());
      }
      for (const key of SETTING_KEYS) {
        // A deleted row means defaults again, whatever version was cached; but a
        // row first created while this read was on its way is not deleted.
        if (!seen.has(key) && this.entries[key] && (this.appliedAt.get(key) ?? 0) < started) {
          delete this.entries[key];
          if (key === "switches") this.updateSwitchGauges();
        }
      }
    } catch (err) {
      const now = performance.now();
      if (now - this.lastFailureLog > 10_000) {
        this.lastFailureLog = now;
        this.deps.log.warn({ err }, "could not load settings from Postgres; keeping the cached ones");
      }
    } finally {
      this.loadedAt = performance.now();
    }
  }

  private updateSwitchGauges(): void {
    const gauge = resilienceMetrics(this.deps.metrics).switchState;
    const stored = this.get("switches").value ?? {};
    for (const name of SWITCH_NAMES) gauge.set({ name }, (stored[name] ?? SWITCHES[name].default) ? 1 : 0);
  }
}

const store = globalThis as unknown as { __fpLiveSettings?: WeakMap<object, LiveSettings> };

/**
 * The settings cache of one app instance. Keyed by its Redis client rather
 * than by `deps`: requests see copies of `deps` (with a request-scoped
 * logger), while the client is the instance's own.
 */
export function liveSettings(deps: Deps): LiveSettings {
  store.__fpLiveSettings ??= new WeakMap();
  let live = store.__fpLiveSettings.get(deps.redis);
  if (!live) {
    live = new LiveSettings(deps);
    store.__fpLiveSettings.set(deps.redis, live);
  }
  return live;
}

/** The current settings, loaded on first use. */
export function currentSettings(deps: Deps): Promise<LiveSettings> {
  return liveSettings(deps).ready();
}

type ChangeMessage = { key: SettingKey; value: unknown; version: number; updatedBy: string | null; updatedAt: string | null };

function parseMessage(text: string): ChangeMessage | null {
  try {
    const m = JSON.parse(text) as Partial<ChangeMessage>;
    if (typeof m.key !== "string" || !(SETTING_KEYS as string[]).includes(m.key) || typeof m.version !== "number") return null;
    return { key: m.key, value: m.value, version: m.version, updatedBy: m.updatedBy ?? null, updatedAt: m.updatedAt ?? null };
  } catch {
    return null;
  }
}

const hooks = globalThis as unknown as { __fpSettingsTickHooks?: Set<(deps: Deps) => Promise<unknown>> };

/**
 * Work to run on every periodic reload of a syncing instance (and once at its
 * start), e.g. refreshing the circuit gauges so /api/metrics shows every
 * breaker even on an instance that has not served a protected call yet.
 */
export function onSyncTick(fn: (deps: Deps) => Promise<unknown>): void {
  hooks.__fpSettingsTickHooks ??= new Set();
  hooks.__fpSettingsTickHooks.add(fn);
}

function runTickHooks(deps: Deps): void {
  for (const fn of hooks.__fpSettingsTickHooks ?? []) {
    fn(deps).catch((err: unknown) => deps.log.debug({ err }, "settings tick hook failed"));
  }
}

export type SettingsSync = {
  /** Resolves once subscribed (changes made after it are seen). */
  ready: Promise<void>;
  stop: () => Promise<void>;
};

/**
 * Keeps this instance's settings current: a subscriber connection of its own
 * applies pushed changes, and a periodic reload from Postgres catches any
 * message lost while Redis was away (also run on every reconnect).
 */
export function startSettingsSync(deps: Deps, opts: { reloadIntervalMs?: number } = {}): SettingsSync {
  const live = liveSettings(deps);
  live.syncing = true;
  const channel = settingsChannel(deps.env);
  const sub = deps.redis.duplicate({ connectionName: "flashpoints-settings", enableOfflineQueue: true, lazyConnect: false });
  sub.on("error", () => {});
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  sub.on("message", (ch: string, text: string) => {
    if (ch !== channel) return;
    const m = parseMessage(text);
    if (m) live.apply(m.key, m.value, m.version, m.updatedBy, m.updatedAt);
  });
  sub.on("ready", () => {
    sub
      .subscribe(channel)
      .then(() => live.reload())
      .then(() => markReady())
      .catch((err: unknown) => deps.log.warn({ err }, "settings subscription failed; periodic reload still applies"));
  });
  const timer = setInterval(() => {
    void live.reload();
    runTickHooks(deps);
  }, opts.reloadIntervalMs ?? SYNC_RELOAD_MS);
  timer.unref();
  void live.ready().then(() => runTickHooks(deps));
  return {
    ready,
    stop: async () => {
      clearInterval(timer);
      live.syncing = false;
      sub.disconnect();
    },
  };
}

export type SettingChange<K extends SettingKey> = {
  actor: AuditEntry["actor"];
  /** Audit action, e.g. `rateLimit.set`. */
  action: string;
  target: string;
  reason: string;
  requestId?: string | null;
  /** The new value from the current one (undefined when no row exists yet). */
  change: (current: SettingValue<K> | undefined) => SettingValue<K>;
  /** How before/after appear in the audit log (default: the stored values). */
  auditView?: (value: SettingValue<K> | undefined) => unknown;
  /** Or what to log as before/after outright (e.g. a circuit's state rather than the row). */
  audit?: { before: unknown; after: unknown };
};

export type SettingChangeResult<K extends SettingKey> = {
  before: SettingValue<K> | undefined;
  after: SettingValue<K>;
  version: number;
};

/**
 * An admin change: the settings row and its audit entry in one transaction
 * (the row locked, so concurrent changes serialise), then applied here and
 * published to every instance. A publish that fails is logged; the other
 * instances still get the change with their next periodic reload.
 */
export async function updateSetting<K extends SettingKey>(deps: Deps, key: K, c: SettingChange<K>): Promise<SettingChangeResult<K>> {
  const live = await currentSettings(deps);
  const view = c.auditView ?? ((v) => v ?? null);
  const result = await deps.db.$transaction(async (tx) => {
    await tx.$executeRaw`INSERT INTO settings (key, value, version) VALUES (${key}, 'null'::jsonb, 0) ON CONFLICT (key) DO NOTHING`;
    const [row] = await tx.$queryRaw<{ value: unknown; version: number }[]>`
      SELECT value, version FROM settings WHERE key = ${key} FOR UPDATE`;
    if (!row) throw new AppError("INTERNAL", `settings row ${key} vanished`);
    const before = parseValue(key, row.value, deps);
    const parsed = SCHEMAS[key].safeParse(c.change(before));
    if (!parsed.success) throw new AppError("VALIDATION", `invalid ${key} setting: ${parsed.error.message}`);
    const after = parsed.data as SettingValue<K>;
    const version = row.version + 1;
    const updatedAt = deps.clock.now();
    await tx.setting.update({
      where: { key },
      data: { value: after as Prisma.InputJsonValue, version, updatedBy: c.actor.email, updatedAt },
    });
    await writeAudit(tx, {
      actor: c.actor,
      action: c.action,
      target: c.target,
      reason: c.reason,
      before: c.audit ? c.audit.before : view(before),
      after: c.audit ? c.audit.after : view(after),
      requestId: c.requestId ?? null,
    });
    return { before, after, version, updatedAt: updatedAt.toISOString() };
  });
  live.apply(key, result.after, result.version, c.actor.email, result.updatedAt);
  const message: ChangeMessage = { key, value: result.after, version: result.version, updatedBy: c.actor.email, updatedAt: result.updatedAt };
  await deps.redis.publish(settingsChannel(deps.env), JSON.stringify(message)).catch((err: unknown) => {
    deps.log.warn({ err, key }, "could not publish a settings change; other instances pick it up on their next reload");
  });
  return { before: result.before, after: result.after, version: result.version };
}
