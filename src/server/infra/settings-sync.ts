import type { Deps } from "./deps";
import { createSubscriber } from "./redis";

/**
 * Keeps the live settings (./live-settings.ts) of every instance in step: a
 * change is published on `${REDIS_KEY_PREFIX}settings`, and each syncing
 * instance applies it within milliseconds; a periodic reload from Postgres
 * catches any message lost while Redis was away.
 */

/** Fallback reload while syncing (pub/sub carries changes within ms). */
export const SYNC_RELOAD_MS = 5_000;

export type SettingChangeMessage = {
  key: string;
  value: unknown;
  version: number;
  updatedBy: string | null;
  updatedAt: string | null;
};

type SyncDeps = Pick<Deps, "env" | "redis" | "log" | "settings">;

export function settingsChannel(env: Deps["env"]): string {
  return `${env.REDIS_KEY_PREFIX}settings`;
}

function parseMessage(text: string): SettingChangeMessage | null {
  try {
    const m = JSON.parse(text) as Partial<SettingChangeMessage>;
    if (typeof m.key !== "string" || typeof m.version !== "number") return null;
    return { key: m.key, value: m.value, version: m.version, updatedBy: m.updatedBy ?? null, updatedAt: m.updatedAt ?? null };
  } catch {
    return null;
  }
}

/**
 * Tells every instance about a committed change. A publish that fails is
 * logged; the others still get the change with their next periodic reload.
 */
export async function publishSettingChange(deps: Omit<SyncDeps, "settings">, message: SettingChangeMessage): Promise<void> {
  await deps.redis.publish(settingsChannel(deps.env), JSON.stringify(message)).catch((err: unknown) => {
    deps.log.warn({ err, key: message.key }, "could not publish a settings change; other instances pick it up on their next reload");
  });
}

export type SettingsSync = {
  /** Resolves once subscribed (changes made after it are seen). */
  ready: Promise<void>;
  stop: () => Promise<void>;
};

export type SettingsSyncOptions = {
  reloadIntervalMs?: number;
  /**
   * Work to run on every periodic reload (and once at the start), e.g.
   * looking at each circuit so time-based transitions are logged when due.
   */
  onTick?: () => Promise<unknown>;
};

/**
 * Keeps this instance's settings current: a subscriber connection of its own
 * applies pushed changes, and a periodic reload from Postgres catches any
 * message lost while Redis was away (also run on every reconnect).
 */
export function startSettingsSync(deps: SyncDeps, opts: SettingsSyncOptions = {}): SettingsSync {
  const live = deps.settings;
  live.syncing = true;
  const channel = settingsChannel(deps.env);
  const sub = createSubscriber(deps.redis, "flashpoints-settings");
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
  const tick = () => {
    opts.onTick?.().catch((err: unknown) => deps.log.debug({ err }, "settings tick failed"));
  };
  const timer = setInterval(() => {
    void live.reload();
    tick();
  }, opts.reloadIntervalMs ?? SYNC_RELOAD_MS);
  timer.unref();
  void live.ready().then(tick);
  return {
    ready,
    stop: async () => {
      clearInterval(timer);
      live.syncing = false;
      sub.disconnect();
    },
  };
}
