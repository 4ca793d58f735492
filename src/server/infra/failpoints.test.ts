import { describe, expect, it } from "vitest";
import { FailpointError, Failpoints, parseFailpoints } from "./failpoints";

describe("failpoints", () => {
  it("parses error and delay actions", () => {
    const fp = parseFailpoints("credit.afterCommit=error, refund.apply=delay:25");
    expect(fp.get("credit.afterCommit")).toEqual({ kind: "error" });
    expect(fp.get("refund.apply")).toEqual({ kind: "delay", ms: 25 });
  });

  it.each(["x", "x=boom", "x=delay:", "=error"])("rejects %j", (spec) => {
    expect(() => parseFailpoints(spec)).toThrow(/FAILPOINTS/);
  });

  it("throws or delays when enabled", async () => {
    const fp = new Failpoints("a=error,b=delay:30", true);
    await expect(fp.hit("a")).rejects.toBeInstanceOf(FailpointError);
    const t0 = Date.now();
    await fp.hit("b");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    await expect(fp.hit("c")).resolves.toBeUndefined();
  });

  it("does nothing when disabled, even if configured", async () => {
    const fp = new Failpoints("a=error", false);
    await expect(fp.hit("a")).resolves.toBeUndefined();
    fp.set("a=error");
    expect(fp.isActive("a")).toBe(false);
  });
});
