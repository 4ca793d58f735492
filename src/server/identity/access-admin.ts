import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { isUniqueViolation } from "~/server/infra/db";
import { writeAudit, type AuditEntry } from "~/server/audit/audit-log";
import type { AdminRole } from "~/generated/prisma/client";
import { hashPassword } from "./passwords";
import { ZEmail, ZPassword } from "./admin-users";
import { createApiKey, forgetCachedApiKeys, type ApiKeyScope } from "./api-keys";

/**
 * Who may call the service and who may sign in to the dashboard, managed by
 * admins: API keys (the secret shown once, only its hash stored) and
 * dashboard users (roles, disabling). Every change is audited in its own
 * transaction; the last active admin can be neither demoted nor disabled.
 */

type Caller = { actor: AuditEntry["actor"]; requestId?: string | null };

export type ApiKeyView = { id: string; name: string; prefix: string; scopes: string[]; createdAt: string; revokedAt: string | null; lastUsedAt: string | null };

const keySelect = { id: true, name: true, prefix: true, scopes: true, createdAt: true, revokedAt: true, lastUsedAt: true } as const;

function keyView(k: { id: string; name: string; prefix: string; scopes: string[]; createdAt: Date; revokedAt: Date | null; lastUsedAt: Date | null }): ApiKeyView {
  return { ...k, createdAt: k.createdAt.toISOString(), revokedAt: k.revokedAt?.toISOString() ?? null, lastUsedAt: k.lastUsedAt?.toISOString() ?? null };
}

export async function listApiKeys(deps: Pick<Deps, "db">): Promise<ApiKeyView[]> {
  const rows = await deps.db.apiKey.findMany({ select: keySelect, orderBy: [{ revokedAt: { sort: "desc", nulls: "first" } }, { createdAt: "desc" }], take: 500 });
  return rows.map(keyView);
}

/** A new key: the answer carries the secret, the only time it is ever shown. */
export async function createApiKeyAudited(
  deps: Pick<Deps, "db">,
  input: { name: string; scopes: readonly ApiKeyScope[]; reason: string },
  caller: Caller,
): Promise<ApiKeyView & { key: string }> {
  const { row, key } = await deps.db.$transaction(async (tx) => {
    const made = await createApiKey(tx, input);
    const created = await tx.apiKey.findUniqueOrThrow({ where: { id: made.id }, select: keySelect });
    await writeAudit(tx, {
      actor: caller.actor,
      action: "apiKey.create",
      target: `apiKey:${created.id}`,
      reason: input.reason,
      after: { name: created.name, prefix: created.prefix, scopes: created.scopes },
      requestId: caller.requestId ?? null,
    });
    return { row: created, key: made.key };
  });
  return { ...keyView(row), key };
}

/** Revokes a key; every instance refuses it within API_KEY_CACHE_MS. Revoking a revoked key changes nothing. */
export async function revokeApiKeyAudited(deps: Pick<Deps, "db" | "clock">, input: { id: string; reason: string }, caller: Caller): Promise<ApiKeyView> {
  const row = await deps.db.$transaction(async (tx) => {
    const before = await tx.apiKey.findUnique({ where: { id: input.id }, select: keySelect });
    if (!before) throw new AppError("NOT_FOUND", `no API key ${input.id}`);
    if (before.revokedAt) return before;
    const after = await tx.apiKey.update({ where: { id: input.id }, data: { revokedAt: deps.clock.now() }, select: keySelect });
    await writeAudit(tx, {
      actor: caller.actor,
      action: "apiKey.revoke",
      target: `apiKey:${input.id}`,
      reason: input.reason,
      before: { revoked: false },
      after: { revoked: true },
      requestId: caller.requestId ?? null,
    });
    return after;
  });
  forgetCachedApiKeys();
  return keyView(row);
}

export type AdminUserView = { id: string; email: string; role: AdminRole; createdAt: string; disabledAt: string | null };

const userSelect = { id: true, email: true, role: true, createdAt: true, disabledAt: true } as const;

function userView(u: { id: string; email: string; role: AdminRole; createdAt: Date; disabledAt: Date | null }): AdminUserView {
  return { ...u, createdAt: u.createdAt.toISOString(), disabledAt: u.disabledAt?.toISOString() ?? null };
}

export async function listAdminUsers(deps: Pick<Deps, "db">): Promise<AdminUserView[]> {
  const rows = await deps.db.adminUser.findMany({ select: userSelect, orderBy: [{ disabledAt: { sort: "desc", nulls: "first" } }, { email: "asc" }], take: 500 });
  return rows.map(userView);
}

export async function createAdminUserAudited(
  deps: Pick<Deps, "db">,
  input: { email: string; password: string; role: AdminRole; reason: string },
  caller: Caller,
): Promise<AdminUserView> {
  const email = ZEmail.parse(input.email);
  const passwordHash = await hashPassword(ZPassword.parse(input.password));
  try {
    return await deps.db.$transaction(async (tx) => {
      const created = await tx.adminUser.create({ data: { email, passwordHash, role: input.role }, select: userSelect });
      await writeAudit(tx, {
        actor: caller.actor,
        action: "adminUser.create",
        target: `adminUser:${email}`,
        reason: input.reason,
        after: { email, role: input.role },
        requestId: caller.requestId ?? null,
      });
      return userView(created);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw new AppError("CONFLICT", `a user ${email} exists already`);
    throw e;
  }
}

/**
 * Changes a user's role or disables them (ending their sessions at once), in
 * one transaction that locks the active admins first: two admins demoting
 * each other at the same moment cannot leave the dashboard without one.
 */
export async function changeAdminUser(
  deps: Pick<Deps, "db" | "clock">,
  input: { id: string; reason: string } & ({ role: AdminRole } | { disable: true }),
  caller: Caller,
): Promise<AdminUserView> {
  return deps.db.$transaction(async (tx) => {
    const admins = await tx.$queryRaw<{ id: string }[]>`
      SELECT id::text FROM admin_users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id FOR UPDATE`;
    const before = await tx.adminUser.findUnique({ where: { id: input.id }, select: userSelect });
    if (!before) throw new AppError("NOT_FOUND", `no user ${input.id}`);
    const losesAdmin = before.role === "admin" && !before.disabledAt && ("disable" in input || input.role !== "admin");
    if (losesAdmin && admins.length <= 1) {
      throw new AppError("INVALID_STATE", `${before.email} is the last admin: make someone else admin first`);
    }
    const now = deps.clock.now();
    const after =
      "disable" in input
        ? await tx.adminUser.update({ where: { id: input.id }, data: { disabledAt: before.disabledAt ?? now }, select: userSelect })
        : await tx.adminUser.update({ where: { id: input.id }, data: { role: input.role }, select: userSelect });
    if ("disable" in input) {
      await tx.adminSession.updateMany({ where: { userId: input.id, revokedAt: null }, data: { revokedAt: now } });
    }
    await writeAudit(tx, {
      actor: caller.actor,
      action: "disable" in input ? "adminUser.disable" : "adminUser.setRole",
      target: `adminUser:${before.email}`,
      reason: input.reason,
      before: "disable" in input ? { disabled: before.disabledAt !== null } : { role: before.role },
      after: "disable" in input ? { disabled: true } : { role: after.role },
      requestId: caller.requestId ?? null,
    });
    return userView(after);
  });
}
