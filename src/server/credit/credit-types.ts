import type { Db } from "~/server/infra/db";
import type { Deps } from "~/server/infra/deps";
import type { Clock } from "~/server/infra/clock";
import { AppError } from "~/server/infra/app-error";
import { writeAudit, type AuditEntry } from "~/server/audit/audit-log";

/** A kind of points (loyalty points, coupons credit…): every account holds one of them. */
export type CreditTypeView = { id: string; name: string; createdAt: string };

const creditTypeSelect = { id: true, name: true, createdAt: true } as const;

function toView(row: { id: string; name: string; createdAt: Date }): CreditTypeView {
  return { id: row.id, name: row.name, createdAt: row.createdAt.toISOString() };
}

export async function listCreditTypes(db: Db): Promise<CreditTypeView[]> {
  const rows = await db.creditType.findMany({ select: creditTypeSelect, orderBy: { id: "asc" } });
  return rows.map(toView);
}

/**
 * Creates a credit type, audited in the same transaction. Creating it again
 * with the same name answers the same (a service may repeat the call safely);
 * another name under an existing id is refused with 409 CONFLICT. Credit
 * types are never deleted or renamed.
 */
export async function createCreditType(
  deps: Pick<Deps, "db">,
  input: { id: string; name: string; reason: string },
  caller: { actor: AuditEntry["actor"]; requestId?: string | null },
): Promise<CreditTypeView> {
  return deps.db.$transaction(async (tx) => {
    // A concurrent insert of the same id waits for the other transaction; then nothing is inserted here.
    const [created] = await tx.$queryRaw<{ id: string; name: string; createdAt: Date }[]>`
      INSERT INTO credit_types (id, name) VALUES (${input.id}, ${input.name})
      ON CONFLICT (id) DO NOTHING
      RETURNING id, name, created_at AS "createdAt"`;
    if (created) {
      await writeAudit(tx, {
        actor: caller.actor,
        action: "creditType.create",
        target: `creditType:${input.id}`,
        reason: input.reason,
        after: { id: created.id, name: created.name },
        requestId: caller.requestId ?? null,
      });
      return toView(created);
    }
    const existing = await tx.creditType.findUniqueOrThrow({ where: { id: input.id }, select: creditTypeSelect });
    if (existing.name !== input.name) {
      throw new AppError("CONFLICT", `credit type ${input.id} exists with another name ("${existing.name}")`);
    }
    return toView(existing);
  });
}

/**
 * Credit types are created rarely and never deleted, so a positive answer is
 * kept in the process for a minute: the grant path then asks Postgres nothing
 * extra. An unknown type is asked about every time.
 */
const KNOWN_TYPE_MS = 60_000;
const KNOWN_TYPES_MAX = 1_000;
const knownCreditTypes = new Map<string, number>();

export async function assertCreditType(db: Db, creditTypeId: string, clock: Clock): Promise<void> {
  const now = clock.nowMs();
  if ((knownCreditTypes.get(creditTypeId) ?? 0) > now) return;
  const found = await db.creditType.findUnique({ where: { id: creditTypeId }, select: { id: true } });
  if (!found) throw new AppError("CREDIT_TYPE_NOT_FOUND", `credit type ${creditTypeId} does not exist`);
  if (knownCreditTypes.size >= KNOWN_TYPES_MAX) knownCreditTypes.clear();
  knownCreditTypes.set(creditTypeId, now + KNOWN_TYPE_MS);
}
