import { performance } from "node:perf_hooks";
import type { z } from "zod";
import type { Db } from "./db";
import type { Logger } from "./logger";

/**
 * Live settings: values an operator changes at run time (rate limits, circuit
 * thresholds, forced circuit states, degradation switches). Postgres
 * (`settings`, one JSON value per key) is the truth; each process keeps this
 * cache, which is
 *  - updated at once by the instance that made a change,
 *  - pushed to every other instance by the settings sync (./settings-sync.ts),
 *  - reloaded from Postgres every few seconds as a fallback for lost messages,
 *    and lazily (at most once a second) where no sync runs (tests, scripts).
 * The hot path only reads the cache: no Postgres or Redis round trip.
 *
 * The cache knows no setting of its own: each module that owns a setting
 * defines its key and schema with `defineSetting` and reads it through that
 * definition, so a value is parsed by the schema of the module that uses it.
 */
export type SettingDefinition<T> = { readonly key: string; readonly schema: z.ZodType<T> };

export function defineSetting<T>(key: string, schema: z.ZodType<T>): SettingDefinition<T> {
  return { key, schema };
}

export type SettingEntry<T> = {
  /** Undefined when no row exists (or it is unreadable): defaults apply. */
  value: T | undefined;
  version: number;
  updatedBy: string | null;
  updatedAt: string | null;
};

type RawEntry = {
  raw: unknown;
  version: number;
  updatedBy: string | null;
  updatedAt: string | null;
  /** Parsed value per definition, so a hot-path read parses once per version. */
  parsed: Map<SettingDefinition<unknown>, unknown>;
};

/** Where no sync runs, the cache is refreshed when older than this. */
export const LAZY_MAX_AGE_MS = 1_000;

export class LiveSettings {
  private entries = new Map<string, RawEntry>();
  /** When each entry was applied (performance.now()), to tell a deleted row from one a reload could not see yet. */
  private appliedAt = new Map<string, number>();
  private first: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private loadedAt = -Infinity;
  private lastFailureLog = -Infinity;
  /** True while a settings sync keeps this cache current. */
  syncing = false;

  constructor(private readonly source: { db: Pick<Db, "setting">; log: Logger }) {}

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

  get<T>(def: SettingDefinition<T>): SettingEntry<T> {
    const entry = this.entries.get(def.key);
    if (!entry) return { value: undefined, version: 0, updatedBy: null, updatedAt: null };
    const common = { version: entry.version, updatedBy: entry.updatedBy, updatedAt: entry.updatedAt };
    if (entry.parsed.has(def)) return { value: entry.parsed.get(def) as T | undefined, ...common };
    const value = this.parse(def, entry.raw);
    entry.parsed.set(def, value);
    return { value, ...common };
  }

  /** Applies a value unless the cache already holds a newer version. */
  apply(key: string, raw: unknown, version: number, updatedBy: string | null, updatedAt: string | null): boolean {
    const current = this.entries.get(key);
    if (current && version < current.version) return false;
    this.entries.set(key, { raw, version, updatedBy, updatedAt, parsed: new Map() });
    this.appliedAt.set(key, performance.now());
    return true;
  }

  /** Reads every settings row from Postgres (the truth). Never throws. */
  reload(): Promise<void> {
    this.refreshing ??= this.load().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private parse<T>(def: SettingDefinition<T>, raw: unknown): T | undefined {
    if (raw === null || raw === undefined) return undefined;
    const parsed = def.schema.safeParse(raw);
    if (!parsed.success) {
      this.source.log.warn({ key: def.key, issues: parsed.error.issues }, "unreadable settings row; defaults apply");
      return undefined;
    }
    return parsed.data;
  }

  private async load(): Promise<void> {
    const started = performance.now();
    try {
      const rows = await this.source.db.setting.findMany();
      const seen = new Set<string>();
      for (const row of rows) {
        seen.add(row.key);
        this.apply(row.key, row.value, row.version, row.updatedBy, row.updatedAt.toISOString());
      }
      for (const key of [...this.entries.keys()]) {
        // A deleted row means defaults again, whatever version was cached; but a
        // row first created while this read was on its way is not deleted.
        if (!seen.has(key) && (this.appliedAt.get(key) ?? 0) < started) this.entries.delete(key);
      }
    } catch (err) {
      const now = performance.now();
      if (now - this.lastFailureLog > 10_000) {
        this.lastFailureLog = now;
        this.source.log.warn({ err }, "could not load settings from Postgres; keeping the cached ones");
      }
    } finally {
      this.loadedAt = performance.now();
    }
  }
}
