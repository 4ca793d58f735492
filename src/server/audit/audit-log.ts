import { Prisma, toJson, type Db, type Tx } from "~/server/infra/db";
import type { AdminPrincipal } from "~/server/identity/sessions";

export type AuditEntry = {
  actor: Pick<AdminPrincipal, "email" | "role"> | { email: string; role: string };
  action: string;
  target: string;
  reason: string;
  before?: unknown;
  after?: unknown;
  requestId?: string | null;
};

function json(v: unknown): Prisma.InputJsonValue | typeof Prisma.JsonNull {
  return v === undefined || v === null ? Prisma.JsonNull : toJson(v);
}

/**
 * Appends to the audit log. Takes the transaction of the intervention it
 * records, so the change and its audit row commit or fail together.
 */
export async function writeAudit(tx: Tx, entry: AuditEntry): Promise<void> {
  await tx.auditLog.create({
    data: {
      actor: entry.actor.email,
      role: entry.actor.role,
      action: entry.action,
      target: entry.target,
      reason: entry.reason,
      before: json(entry.before),
      after: json(entry.after),
      requestId: entry.requestId ?? null,
    },
  });
}

export type AuditItem = {
  id: string;
  actor: string;
  role: string;
  action: string;
  target: string;
  reason: string;
  before: unknown;
  after: unknown;
  requestId: string | null;
  createdAt: string;
};

/** Newest first; the cursor is the id of the last item seen. */
export async function listAudit(
  db: Db,
  input: { limit: number; cursor?: string | undefined },
): Promise<{ items: AuditItem[]; nextCursor: string | null }> {
  const rows = await db.auditLog.findMany({
    where: input.cursor ? { id: { lt: BigInt(input.cursor) } } : {},
    orderBy: { id: "desc" },
    take: input.limit + 1,
  });
  const page = rows.slice(0, input.limit);
  return {
    items: page.map((r) => ({
      id: r.id.toString(),
      actor: r.actor,
      role: r.role,
      action: r.action,
      target: r.target,
      reason: r.reason,
      before: r.before,
      after: r.after,
      requestId: r.requestId,
      createdAt: r.createdAt.toISOString(),
    })),
    nextCursor: rows.length > input.limit ? (page[page.length - 1]?.id.toString() ?? null) : null,
  };
}
