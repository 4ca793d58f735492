/**
 * The dashboard's view of the role ladder (src/server/identity/admin-users.ts
 * holds the server's, which is the one that decides). Used only to hide or
 * explain controls the signed-in role cannot use; the server checks every call.
 */
export type DashboardRole = "viewer" | "operator" | "admin";

const RANK: Record<DashboardRole, number> = { viewer: 0, operator: 1, admin: 2 };

export function hasRole(role: string, required: DashboardRole): boolean {
  const rank = RANK[role as DashboardRole] as number | undefined;
  return rank !== undefined && rank >= RANK[required];
}
