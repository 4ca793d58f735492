import { describe, expect, it } from "vitest";
import { isFinalAnswer } from "./request-record";

const ok = { ok: true, result: { success: true } };
const refused = (appCode: string) => ({ ok: false, error: { appCode, message: "…" } });

describe("isFinalAnswer (what X-Request-Id may replay)", () => {
  it("a plain result is final", () => {
    expect(isFinalAnswer({ success: true, balanceAfter: 3 })).toBe(true);
    expect(isFinalAnswer(null)).toBe(true);
  });

  it("a batch is final when every item applied or was refused for good", () => {
    expect(isFinalAnswer({ items: [ok, refused("INSUFFICIENT_BALANCE"), refused("IDEMPOTENCY_KEY_REUSED"), refused("ACCOUNT_NOT_FOUND")] })).toBe(true);
    expect(isFinalAnswer({ items: [] })).toBe(true);
  });

  it("a batch with an item worth retrying is not", () => {
    for (const code of ["RATE_LIMITED", "OPERATION_LOCKED", "UNAVAILABLE", "VERSION_CONFLICT", "CIRCUIT_OPEN"]) {
      expect(isFinalAnswer({ items: [ok, refused(code), refused("INSUFFICIENT_BALANCE")] }), code).toBe(false);
    }
    // An item error without a code cannot be told final.
    expect(isFinalAnswer({ items: [{ ok: false, error: {} }] })).toBe(false);
  });
});
