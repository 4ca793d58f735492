import type { Deps } from "~/server/infra/deps";
import { Prisma } from "~/server/infra/db";
import { AppError } from "~/server/infra/app-error";
import type { SettingDefinition } from "~/server/infra/live-settings";
import { publishSettingChange } from "~/server/infra/settings-sync";
import { writeAudit, type AuditEntry } from "~/server/audit/audit-log";

export type SettingChange<T> = {
  actor: AuditEntry["actor"];
  /** Audit action, e.g. `rateLimit.set`. */
  action: string;
  target: string;
  reason: string;
  requestId?: string | null;
  /** The new value from the current one (undefined when no row exists yet). */
  change: (current: T | undefined) => T;
  /** How before/after appear in the audit log (default: the stored values). */
  auditView?: (value: T | undefined) => unknown;
  /** Or what to log as before/after outright (e.g. a circuit's state rather than the row). */
  audit?: { before: unknown; after: unknown };
};

export type SettingChangeResult<T> = { before: T | undefined; after: T; version: number };

/**
 * An operator's change to a live setting: the settings row and its audit entry
 * in one transaction (the row locked, so concurrent changes serialise), then
 * applied to this instance's cache and published to every other instance.
 */
export async function updateSetting<T>(deps: Deps, def: SettingDefinition<T>, c: SettingChange<T>): Promise<SettingChangeResult<T>> {
  const { key, schema } = def;
  const view = c.auditView ?? ((v) => v ?? null);
  const result = await deps.db.$transaction(async (tx) => {
    await tx.$executeRaw`INSERT INTO settings (key, value, version) VALUES (${key}, 'null'::jsonb, 0) ON CONFLICT (key) DO NOTHING`;
    const [row] = await tx.$queryRaw<{ value: unknown; version: number }[]>`
      SELECT value, version FROM settings WHERE key = ${key} FOR UPDATE`;
    if (!row) throw new AppError("INTERNAL", `settings row ${key} vanished`);
    const current = row.value === null ? undefined : schema.safeParse(row.value);
    const before = current?.success ? current.data : undefined;
    const parsed = schema.safeParse(c.change(before));
    if (!parsed.success) throw new AppError("VALIDATION", `invalid ${key} setting: ${parsed.error.message}`);
    const after = parsed.data;
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
  deps.settings.apply(key, result.after, result.version, c.actor.email, result.updatedAt);
  await publishSettingChange(deps, {
    key,
    value: result.after,
    version: result.version,
    updatedBy: c.actor.email,
    updatedAt: result.updatedAt,
  });
  return { before: result.before, after: result.after, version: result.version };
}
