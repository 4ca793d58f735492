import { z } from "zod";
import type { Db } from "~/server/infra/db";
import type { Clock } from "~/server/infra/clock";
import { randomSecret, sha256Hex } from "./tokens";

export const API_KEY_SCOPES = ["catalog"] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
export const ZApiKeyScope = z.enum(API_KEY_SCOPES);

export type ServicePrincipal = {
  kind: "service";
  keyId: string;
  name: string;
  scopes: readonly string[];
};

/** Keys look like `fpk_<8 char id>_<secret>`; the id part is shown to operators. */
export async function createApiKey(
  db: Pick<Db, "apiKey">,
  input: { name: string; scopes: readonly ApiKeyScope[] },
): Promise<{ id: string; key: string; prefix: string }> {
  const prefix = randomSecret(6).replace(/[-_]/g, "x").slice(0, 8);
  const key = `fpk_${prefix}_${randomSecret(32)}`;
  const row = await db.apiKey.create({
    data: { name: input.name, prefix, keyHash: sha256Hex(key), scopes: [...input.scopes] },
    select: { id: true },
  });
  return { id: row.id, key, prefix };
}

export async function revokeApiKey(db: Db, id: string, clock: Clock): Promise<boolean> {
  const res = await db.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: clock.now() } });
  apiKeyCache.clear();
  return res.count === 1;
}

/** Forgets every key this process has cached (a key was just revoked here). */
export function forgetCachedApiKeys(): void {
  apiKeyCache.clear();
}

/**
 * Looked-up keys are cached briefly in the process so that the API's hot path
 * does not pay a query per call; a revoked key stops working within
 * API_KEY_CACHE_MS on every instance.
 */
export const API_KEY_CACHE_MS = 5_000;
const apiKeyCache = new Map<string, { principal: ServicePrincipal | null; until: number }>();
/** Lookups under way: the calls that find a key's entry expired together share one query. */
const lookups = new Map<string, Promise<ServicePrincipal | null>>();

export async function authenticateApiKey(db: Db, key: string, clock: Clock): Promise<ServicePrincipal | null> {
  if (!/^fpk_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{20,100}$/.test(key)) return null;
  const hash = sha256Hex(key);
  const now = clock.nowMs();
  const hit = apiKeyCache.get(hash);
  if (hit && hit.until > now) return hit.principal;
  let lookup = lookups.get(hash);
  if (!lookup) {
    lookup = lookUp(db, hash, now).finally(() => lookups.delete(hash));
    lookups.set(hash, lookup);
  }
  return lookup;
}

async function lookUp(db: Db, hash: string, now: number): Promise<ServicePrincipal | null> {
  const row = await db.apiKey.findUnique({
    where: { keyHash: hash },
    select: { id: true, name: true, scopes: true, revokedAt: true },
  });
  const principal: ServicePrincipal | null =
    row && !row.revokedAt ? { kind: "service", keyId: row.id, name: row.name, scopes: row.scopes } : null;
  if (apiKeyCache.size > 10_000) apiKeyCache.clear();
  apiKeyCache.set(hash, { principal, until: now + API_KEY_CACHE_MS });
  return principal;
}
