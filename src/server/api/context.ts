import { randomUUID } from "node:crypto";
import type { Deps } from "~/server/infra/deps";
import type { Logger } from "~/server/infra/logger";
import { authenticateApiKey, type ServicePrincipal } from "~/server/identity/api-keys";
import { resolveSession, type AdminPrincipal } from "~/server/identity/sessions";

export type ContextInput = {
  deps: Deps;
  requestId?: string | null;
  /**
   * Whether `requestId` came from the client. The HTTP handler passes the id it
   * already chose (echoed in the response), so it must say; otherwise derived.
   */
  requestIdFromClient?: boolean;
  /** The raw `Authorization` header. */
  authorization?: string | null;
  /** The session token from the cookie. */
  sessionToken?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  /** Present when served over HTTP: lets auth.login/logout set the session cookie. */
  setCookie?: (cookie: string) => void;
  /** Whether the request came over TLS (decides the cookie's Secure flag). */
  secure?: boolean;
};

export const REQUEST_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A client's X-Request-Id when well formed, else a new one. */
export function normalizeRequestId(value: string | null | undefined): { id: string; fromClient: boolean } {
  if (value && REQUEST_ID_PATTERN.test(value)) return { id: value, fromClient: true };
  return { id: randomUUID(), fromClient: false };
}

/**
 * Per-request context. Principals are resolved lazily: only procedures that
 * need a caller pay for the lookup, and a bad key only fails those.
 */
export function createContextInner(input: ContextInput) {
  const { id: requestId, fromClient } = normalizeRequestId(input.requestId);
  const { deps } = input;
  const log: Logger = deps.log.child({ requestId });
  let service: Promise<ServicePrincipal | null> | undefined;
  let admin: Promise<AdminPrincipal | null> | undefined;
  return {
    deps,
    requestId,
    /** True when the client sent its own X-Request-Id (replay applies only then). */
    requestIdFromClient: input.requestIdFromClient ?? fromClient,
    log,
    ip: input.ip ?? null,
    userAgent: input.userAgent ?? null,
    secure: input.secure ?? false,
    setCookie: input.setCookie,
    servicePrincipal(): Promise<ServicePrincipal | null> {
      const header = input.authorization ?? "";
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      service ??= match?.[1] ? authenticateApiKey(deps.db, match[1], deps.clock) : Promise.resolve(null);
      return service;
    },
    adminPrincipal(): Promise<AdminPrincipal | null> {
      admin ??= input.sessionToken ? resolveSession(deps.db, deps.clock, input.sessionToken) : Promise.resolve(null);
      return admin;
    },
  };
}

export type Context = ReturnType<typeof createContextInner>;
