import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { checkApiRequest } from "./request-guard";

function req(method: string, headers: Record<string, string>): IncomingMessage {
  return { method, headers: { host: "points.local:3000", ...headers } } as unknown as IncomingMessage;
}

describe("request guard", () => {
  it("lets GET queries through untouched", () => {
    expect(checkApiRequest(req("GET", { origin: "https://evil.example" }), 1000)).toBeNull();
  });

  it("accepts same-origin JSON, with or without a charset", () => {
    expect(checkApiRequest(req("POST", { "content-type": "application/json" }), 1000)).toBeNull();
    expect(
      checkApiRequest(
        req("POST", {
          "content-type": "application/json; charset=utf-8",
          origin: "http://points.local:3000",
          "sec-fetch-site": "same-origin",
        }),
        1000,
      ),
    ).toBeNull();
  });

  it.each([
    ["multipart/form-data; boundary=x", 415],
    ["text/plain", 415],
    ["application/x-www-form-urlencoded", 415],
    ["", 415],
  ])("refuses content type %j", (ct, status) => {
    expect(checkApiRequest(req("POST", ct ? { "content-type": ct } : {}), 1000)?.status).toBe(status);
  });

  it.each([
    [{ origin: "http://evil.example" }],
    [{ origin: "null" }],
    [{ origin: "http://points.local:3001" }],
    [{ "sec-fetch-site": "cross-site" }],
    [{ "sec-fetch-site": "same-site" }],
  ])("refuses another site: %j", (h) => {
    const r = checkApiRequest(req("POST", { "content-type": "application/json", ...h }), 1000);
    expect(r).toMatchObject({ status: 403, appCode: "FORBIDDEN" });
  });

  it("refuses a declared body over the limit", () => {
    const r = checkApiRequest(req("POST", { "content-type": "application/json", "content-length": "1001" }), 1000);
    expect(r).toMatchObject({ status: 413, appCode: "PAYLOAD_TOO_LARGE" });
  });
});
