import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";

/**
 * Who is on the other end, as far as this process can know. With TRUST_PROXY
 * unset the socket is the only truth and `X-Forwarded-*` is ignored
 * everywhere (a client could send any of them); with TRUST_PROXY=1 one proxy
 * of ours sits in front, so its headers are believed: the client address is
 * the last `X-Forwarded-For` entry (the one our proxy appended), and
 * `X-Forwarded-Proto` / `-Host` say how the client reached it.
 */
/** Set by the HTTP server on every request it hands to Next (a client's own value is overwritten). */
export const SECURE_REQUEST_HEADER = "x-fp-secure";

export type ClientInfo = { ip: string | null; secure: boolean; host: string | null };

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

function lastListEntry(value: string | undefined): string | undefined {
  const last = value?.split(",").pop()?.trim();
  return last ? last : undefined;
}

export function clientInfo(req: IncomingMessage, trustProxy: boolean): ClientInfo {
  const socketSecure = (req.socket as Partial<TLSSocket> | undefined)?.encrypted === true;
  const socketIp = req.socket?.remoteAddress ?? null;
  if (!trustProxy) return { ip: socketIp, secure: socketSecure, host: header(req, "host") ?? null };
  return {
    ip: lastListEntry(header(req, "x-forwarded-for")) ?? socketIp,
    secure: socketSecure || lastListEntry(header(req, "x-forwarded-proto"))?.toLowerCase() === "https",
    host: lastListEntry(header(req, "x-forwarded-host")) ?? header(req, "host") ?? null,
  };
}
