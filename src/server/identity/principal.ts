import type { ServicePrincipal } from "./api-keys";
import type { AdminPrincipal } from "./sessions";

/** Who is calling: a service by its API key, or an operator by their session. */
export type Principal = ServicePrincipal | AdminPrincipal;

/**
 * A stable key for the caller, e.g. to scope X-Request-Id records: one
 * caller can never read another's results.
 */
export function principalKey(p: { kind: "service"; keyId: string } | { kind: "admin"; userId: string }): string {
  return p.kind === "service" ? `key:${p.keyId}` : `user:${p.userId}`;
}

/** How a principal appears in the audit log. */
export function auditActorOf(p: Principal): { email: string; role: string } {
  return p.kind === "service" ? { email: `api-key:${p.name}#${p.keyId.slice(0, 8)}`, role: "service" } : { email: p.email, role: p.role };
}
