import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Response headers that keep browsers from framing, sniffing or leaking:
 * every response gets them; HSTS only over HTTPS (a browser ignores it on
 * plain HTTP, and sending it there would only confuse a local set-up).
 */
const COMMON = {
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
} as const;

const HSTS = "max-age=63072000; includeSubDomains";

/** The API answers JSON only: nothing may load from it, nothing may frame it. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export function setApiSecurityHeaders(res: ServerResponse, secure: boolean): void {
  for (const [name, value] of Object.entries(COMMON)) res.setHeader(name, value);
  res.setHeader("content-security-policy", API_CSP);
  if (secure) res.setHeader("strict-transport-security", HSTS);
}

/**
 * The dashboard's policy: scripts only with this response's nonce (and what
 * they load, `'strict-dynamic'`), styles and images from itself, no framing.
 * Next.js reads the policy from the request's `Content-Security-Policy`
 * header and puts the nonce on every script it renders, so the header is set
 * on the request as well as on the response. Development needs `eval` for
 * hot reload.
 */
export function pagePolicy(nonce: string, dev: boolean): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? " 'unsafe-eval'" : ""}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    `connect-src 'self'${dev ? " ws: wss:" : ""}`,
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

export function setPageSecurityHeaders(req: IncomingMessage, res: ServerResponse, opts: { secure: boolean; dev: boolean }): void {
  const policy = pagePolicy(randomBytes(16).toString("base64"), opts.dev);
  req.headers["content-security-policy"] = policy;
  res.setHeader("content-security-policy", policy);
  for (const [name, value] of Object.entries(COMMON)) res.setHeader(name, value);
  if (opts.secure) res.setHeader("strict-transport-security", HSTS);
}
