import type { Db } from "~/server/infra/db";
import type { Clock } from "~/server/infra/clock";
import type { AdminRole } from "~/generated/prisma/client";
import { randomSecret, sha256Hex } from "./tokens";

/**
 * The session cookie. Over HTTPS it carries the `__Host-` prefix, which the
 * browser only accepts with `Secure`, `Path=/` and no `Domain`: no subdomain
 * and no plain-HTTP page can plant or overwrite it. Plain HTTP (a local set-up)
 * cannot use the prefix, so there the name is bare.
 */
export const SESSION_COOKIE = "fp_session";
export const SECURE_SESSION_COOKIE = "__Host-fp_session";

export function sessionCookieName(secure: boolean): string {
  return secure ? SECURE_SESSION_COOKIE : SESSION_COOKIE;
}

export type AdminPrincipal = {
  kind: "admin";
  userId: string;
  email: string;
  role: AdminRole;
  sessionId: string;
};

/** Creates a server-side session; returns the token for the cookie (stored only as a hash). */
export async function createSession(
  db: Db,
  clock: Clock,
  input: { userId: string; ttlSeconds: number; ip: string | null; userAgent: string | null },
): Promise<{ token: string; expiresAt: Date }> {
  const token = randomSecret(32);
  const expiresAt = new Date(clock.nowMs() + input.ttlSeconds * 1000);
  await db.adminSession.create({
    data: {
      id: sha256Hex(token),
      userId: input.userId,
      expiresAt,
      ip: input.ip?.slice(0, 64) ?? null,
      userAgent: input.userAgent?.slice(0, 400) ?? null,
    },
  });
  return { token, expiresAt };
}

export async function resolveSession(db: Db, clock: Clock, token: string): Promise<AdminPrincipal | null> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
  const id = sha256Hex(token);
  const row = await db.adminSession.findUnique({
    where: { id },
    select: {
      id: true,
      expiresAt: true,
      revokedAt: true,
      user: { select: { id: true, email: true, role: true, disabledAt: true } },
    },
  });
  if (!row || row.revokedAt || row.expiresAt.getTime() <= clock.nowMs() || row.user.disabledAt) return null;
  return { kind: "admin", userId: row.user.id, email: row.user.email, role: row.user.role, sessionId: row.id };
}

export async function revokeSession(db: Db, clock: Clock, sessionId: string): Promise<void> {
  await db.adminSession.updateMany({ where: { id: sessionId, revokedAt: null }, data: { revokedAt: clock.now() } });
}

export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${sessionCookieName(secure)}=${token}`,
    "Path=/",
    "HttpOnly",
    "SameSite=Lax",
    `Max-Age=${maxAgeSeconds}`,
    ...(secure ? ["Secure"] : []),
  ].join("; ");
}

export function clearSessionCookie(secure: boolean): string {
  return sessionCookie("", 0, secure);
}

/** A cookie's value; null when absent or not decodable (a malformed cookie is no session, not an error). */
export function readCookie(header: string | null | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return null;
    }
  }
  return null;
}

/** The session token a request carries, under the cookie name its scheme allows. */
export function readSessionToken(cookieHeader: string | null | undefined, secure: boolean): string | null {
  return readCookie(cookieHeader, sessionCookieName(secure));
}
