import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { batchedProcedures, checkApiRequest } from "./request-guard";

const opts = { bodyLimitBytes: 1000, batchMax: 20, trustProxy: false };

function req(method: string, headers: Record<string, string>, url = "/api/trpc/credit.grant"): IncomingMessage {
  return { method, url, headers: { host: "points.local:3000", ...headers } } as unknown as IncomingMessage;
}

describe("request guard", () => {
  it("lets GET queries through untouched", () => {
    expect(checkApiRequest(req("GET", { origin: "https://evil.example" }), opts)).toBeNull();
  });

  it("accepts same-origin JSON, with or without a charset", () => {
    expect(checkApiRequest(req("POST", { "content-type": "application/json" }), opts)).toBeNull();
    expect(
      checkApiRequest(
        req("POST", {
          "content-type": "application/json; charset=utf-8",
          origin: "http://points.local:3000",
          "sec-fetch-site": "same-origin",
        }),
        opts,
      ),
    ).toBeNull();
  });

  it.each([
    ["multipart/form-data; boundary=x", 415],
    ["text/plain", 415],
    ["application/x-www-form-urlencoded", 415],
    ["", 415],
  ])("refuses content type %j", (ct, status) => {
    expect(checkApiRequest(req("POST", ct ? { "content-type": ct } : {}), opts)?.status).toBe(status);
  });

  it.each([
    [{ origin: "http://evil.example" }],
    [{ origin: "null" }],
    [{ origin: "http://points.local:3001" }],
    [{ "sec-fetch-site": "cross-site" }],
    [{ "sec-fetch-site": "same-site" }],
  ])("refuses another site: %j", (h) => {
    const r = checkApiRequest(req("POST", { "content-type": "application/json", ...h }), opts);
    expect(r).toMatchObject({ status: 403, appCode: "FORBIDDEN" });
  });

  it("refuses a declared body over the limit", () => {
    const r = checkApiRequest(req("POST", { "content-type": "application/json", "content-length": "1001" }), opts);
    expect(r).toMatchObject({ status: 413, appCode: "PAYLOAD_TOO_LARGE" });
  });

  it("limits a batch to batchMax calls, and never batches auth.login", () => {
    const json = { "content-type": "application/json" };
    const names = (n: number) => Array.from({ length: n }, (_, i) => `credit.account${i}`).join(",");
    expect(checkApiRequest(req("GET", {}, `/api/trpc/${names(20)}?batch=1`), opts)).toBeNull();
    expect(checkApiRequest(req("GET", {}, `/api/trpc/${names(21)}?batch=1`), opts)).toMatchObject({ status: 400, appCode: "VALIDATION" });
    expect(checkApiRequest(req("POST", json, `/api/trpc/${names(21)}?batch=1`), opts)).toMatchObject({ status: 400 });
    expect(checkApiRequest(req("POST", json, "/api/trpc/auth.login?batch=1"), opts)).toMatchObject({ status: 400 });
    expect(checkApiRequest(req("POST", json, "/api/trpc/auth.me%2Cauth.login?batch=1"), opts)).toMatchObject({ status: 400 });
    expect(checkApiRequest(req("POST", json, "/api/trpc/auth.login"), opts)).toBeNull();
    expect(batchedProcedures("/api/trpc/a,b?batch=1&input=x", "/api/trpc/")).toEqual(["a", "b"]);
    expect(batchedProcedures("/api/trpc/a,b", "/api/trpc/")).toBeNull();
  });

  it("believes X-Forwarded-Host for the Origin check only behind a trusted proxy", () => {
    const headers = { "content-type": "application/json", origin: "https://points.example", "x-forwarded-host": "points.example" };
    expect(checkApiRequest(req("POST", headers), opts)).toMatchObject({ status: 403 });
    expect(checkApiRequest(req("POST", headers), { ...opts, trustProxy: true })).toBeNull();
  });
});
