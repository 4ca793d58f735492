import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { clientInfo } from "./client-info";
import { createHealth } from "./ops-endpoints";
import type { Deps } from "~/server/infra/deps";
import { primaryOnly } from "~/server/infra/replica";

function req(headers: Record<string, string>, remoteAddress = "10.0.0.5", encrypted = false): IncomingMessage {
  return { headers: { host: "points.local", ...headers }, socket: { remoteAddress, encrypted } } as unknown as IncomingMessage;
}

describe("who is calling (TRUST_PROXY)", () => {
  const forwarded = { "x-forwarded-for": "198.51.100.7, 203.0.113.9", "x-forwarded-proto": "https", "x-forwarded-host": "points.example" };

  it("unset: the socket is the truth and X-Forwarded-* is ignored", () => {
    expect(clientInfo(req(forwarded), false)).toEqual({ ip: "10.0.0.5", secure: false, host: "points.local" });
    expect(clientInfo(req({}, "10.0.0.5", true), false).secure).toBe(true);
  });

  it("1: one proxy of ours: the last X-Forwarded-For entry, its proto and host", () => {
    expect(clientInfo(req(forwarded), true)).toEqual({ ip: "203.0.113.9", secure: true, host: "points.example" });
    expect(clientInfo(req({}), true)).toEqual({ ip: "10.0.0.5", secure: false, host: "points.local" });
    expect(clientInfo(req({ "x-forwarded-proto": "http" }), true).secure).toBe(false);
  });
});

describe("health", () => {
  it("probes PostgreSQL and Redis at most once a second, however often it is asked; draining answers 503 without a probe", async () => {
    let probes = 0;
    const deps = {
      db: { $queryRaw: async () => (probes++, [{ one: 1 }]) },
      redis: { ping: async () => "PONG" },
      reads: primaryOnly({} as Deps["db"]),
    } as unknown as Deps;
    const state = { draining: false };
    const health = createHealth(deps, state);
    const answers = await Promise.all(Array.from({ length: 50 }, () => health()));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers[0]?.body).toEqual({ status: "ok", postgres: "up", redis: "up" }); // no replica configured: none reported
    expect(probes).toBe(1);
    state.draining = true;
    expect(await health()).toEqual({ status: 503, body: { status: "draining" } });
    expect(probes).toBe(1);
  });
});
