import { describe, expect, it } from "vitest";
import { AppError } from "~/server/infra/app-error";
import { errorData, isMapped, toTRPCError } from "./error-map";

/** Whether an error's stack names any frame ("    at …"). */
const hasFrames = (e: Error) => /\n\s+at /.test(e.stack ?? "");

describe("answers and faults as errors", () => {
  it("an answer (SOLD_OUT) is made without a stack, as AppError and as tRPC error, and keeps its code and hint", () => {
    const answer = new AppError("SOLD_OUT", "this item is sold out", { retryAfterMs: 12.2 });
    expect(hasFrames(answer)).toBe(false);
    expect(answer.stack).toBe("AppError: SOLD_OUT: this item is sold out");
    const mapped = toTRPCError(answer);
    expect(hasFrames(mapped)).toBe(false);
    expect(mapped.code).toBe("CONFLICT");
    expect(mapped.cause).toBe(answer);
    expect(errorData(mapped)).toEqual({ appCode: "SOLD_OUT", retryAfterMs: 13 });
    expect(isMapped(mapped, answer)).toBe(true);
  });

  it("a fault (UNAVAILABLE, INTERNAL) keeps the stack that says where it came from", () => {
    for (const code of ["UNAVAILABLE", "INTERNAL"] as const) {
      const fault = new AppError(code, "the database did not answer");
      expect(hasFrames(fault)).toBe(true);
      expect(hasFrames(toTRPCError(fault))).toBe(true);
    }
  });

  it("leaves the process's stack trace limit as it found it, whatever it was", () => {
    const before = Error.stackTraceLimit;
    try {
      Error.stackTraceLimit = 7;
      toTRPCError(new AppError("RATE_LIMITED", "slow down"));
      expect(Error.stackTraceLimit).toBe(7);
      const after = new Error("a bug");
      expect(hasFrames(after)).toBe(true);
    } finally {
      Error.stackTraceLimit = before;
    }
  });
});
