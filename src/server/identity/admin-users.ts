import { z } from "zod";
import type { Db } from "~/server/infra/db";
import type { AdminRole } from "~/generated/prisma/client";
import { hashPassword } from "./passwords";

export const ADMIN_ROLES = ["viewer", "operator", "admin"] as const satisfies readonly AdminRole[];
export const ZAdminRole = z.enum(ADMIN_ROLES);
export type { AdminRole };

const RANK: Record<AdminRole, number> = { viewer: 1, operator: 2, admin: 3 };

/** viewer < operator < admin */
export function roleAtLeast(role: AdminRole, required: AdminRole): boolean {
  return RANK[role] >= RANK[required];
}

export const ZEmail = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .pipe(z.email());
export const ZPassword = z.string().min(12, "at least 12 characters").max(200);

export async function createAdminUser(
  db: Db,
  input: { email: string; password: string; role: AdminRole },
): Promise<{ id: string; email: string; role: AdminRole }> {
  const email = ZEmail.parse(input.email);
  const password = ZPassword.parse(input.password);
  const passwordHash = await hashPassword(password);
  return db.adminUser.upsert({
    where: { email },
    create: { email, passwordHash, role: input.role },
    update: { passwordHash, role: input.role, disabledAt: null },
    select: { id: true, email: true, role: true },
  });
}
