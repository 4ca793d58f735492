import { appRouter, createCaller } from "~/server/api/root";
import { createContextInner, type ContextInput } from "~/server/api/context";
import type { Deps } from "~/server/infra/deps";
import { createApiKey, type ApiKeyScope } from "~/server/identity/api-keys";
import type { AdminRole } from "~/server/identity/admin-users";
import { hashPassword } from "~/server/identity/passwords";
import { createSession } from "~/server/identity/sessions";
import { startServer, type RunningServer } from "~/server/http/server";
import { uid } from "./deps";

export { appRouter };

export async function ensureCreditType(deps: Deps, id = "points"): Promise<string> {
  await deps.db.creditType.upsert({ where: { id }, create: { id, name: id }, update: {} });
  return id;
}

/** A fresh API key; returns the plain key. */
export async function makeApiKey(deps: Deps, scopes: ApiKeyScope[] = []): Promise<string> {
  return (await createApiKey(deps.db, { name: uid("key"), scopes })).key;
}

/** A caller authenticated as a service (through the same middlewares as HTTP). */
export async function serviceCaller(deps: Deps, extra: Partial<ContextInput> = {}) {
  const key = await makeApiKey(deps, ["catalog"]);
  return createCaller(createContextInner({ deps, authorization: `Bearer ${key}`, ...extra }));
}

/** The tests' operator password, hashed once per process (a hash costs ~0.7 s by design). */
export const TEST_PASSWORD = "correct horse battery";
let testPasswordHash: Promise<string> | undefined;

/** A caller with an admin session of the given role. */
export async function adminCaller(deps: Deps, role: AdminRole = "admin", extra: Partial<ContextInput> = {}) {
  testPasswordHash ??= hashPassword(TEST_PASSWORD);
  const user = await deps.db.adminUser.create({
    data: { email: `${uid(role)}@test.local`, passwordHash: await testPasswordHash, role },
    select: { id: true, email: true },
  });
  const { token } = await createSession(deps.db, deps.clock, { userId: user.id, ttlSeconds: 3600, ip: null, userAgent: null });
  return { caller: createCaller(createContextInner({ deps, sessionToken: token, ...extra })), email: user.email, token };
}

/** The API (no Next.js) on a random local port. */
export async function startApi(deps: Deps): Promise<RunningServer> {
  return startServer({ deps, port: 0, host: "127.0.0.1", apiOnly: true });
}

/** POST a mutation over real HTTP, as curl would. */
export async function postJson(
  baseUrl: string,
  procedure: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: unknown }> {
  const res = await fetch(`${baseUrl}/api/trpc/${procedure}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}
