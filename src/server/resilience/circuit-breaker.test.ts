import { TRPCError } from "@trpc/server";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { AppError, APP_ERROR_CODES, INFRASTRUCTURE_CODES } from "~/server/infra/app-error";
import { circuitKeys, isInfrastructureFailure, STATE_GAUGE } from "./circuit-breaker";
import { luaSource } from "~/server/infra/lua";
import { mapDbError } from "~/server/infra/db";

describe("isInfrastructureFailure", () => {
  it("does not count this process's own overload (a pool that stayed busy) as the database failing", () => {
    for (const message of ["timeout exceeded when trying to connect", "Transaction API error: Unable to start a transaction in the given time."]) {
      const mapped = mapDbError(new Error(message));
      expect(mapped).toMatchObject({ code: "UNAVAILABLE", details: { overload: "pool" } });
      expect(isInfrastructureFailure(mapped)).toBe(false);
      expect(isInfrastructureFailure(new Error(message))).toBe(false);
    }
    expect(isInfrastructureFailure(new Error("Connection terminated unexpectedly"))).toBe(true);
  });

  it("counts exactly the infrastructure AppError codes, bare or wrapped by tRPC", () => {
    for (const code of APP_ERROR_CODES) {
      const err = new AppError(code, "x");
      expect(isInfrastructureFailure(err)).toBe(INFRASTRUCTURE_CODES.has(code));
      expect(isInfrastructureFailure(new TRPCError({ code: "INTERNAL_SERVER_ERROR", cause: err }))).toBe(
        INFRASTRUCTURE_CODES.has(code),
      );
    }
    expect(isInfrastructureFailure(new AppError("INSUFFICIENT_BALANCE", "x"))).toBe(false);
    expect(isInfrastructureFailure(new AppError("UNAVAILABLE", "x"))).toBe(true);
  });

  it("counts bugs and raw database/Redis outages, not the caller's mistakes", () => {
    expect(isInfrastructureFailure(new Error("undefined is not a function"))).toBe(true);
    expect(isInfrastructureFailure(new TRPCError({ code: "INTERNAL_SERVER_ERROR", cause: new Error("bug") }))).toBe(true);
    expect(isInfrastructureFailure(new Error("Connection is closed."))).toBe(true);
    expect(isInfrastructureFailure(new Error("connect ECONNREFUSED 127.0.0.1:5432"))).toBe(true);
    expect(isInfrastructureFailure(new TRPCError({ code: "BAD_REQUEST", message: "bad input" }))).toBe(false);
    expect(isInfrastructureFailure(new TRPCError({ code: "UNAUTHORIZED" }))).toBe(false);
    const zod = z.object({ a: z.string() }).safeParse({});
    expect(isInfrastructureFailure(new TRPCError({ code: "BAD_REQUEST", cause: zod.error }))).toBe(false);
  });
});

describe("circuit keys and scripts", () => {
  it("puts both keys of a breaker in one hash slot", () => {
    const [state, errors] = circuitKeys("credit.deduct");
    expect(state).toBe("circuit:{credit.deduct}:state");
    expect(errors).toBe("circuit:{credit.deduct}:errors");
    const tag = (k: string) => /\{([^}]+)\}/.exec(k)?.[1];
    expect(tag(state)).toBe(tag(errors));
  });

  it("maps states to the gauge: 0 closed, 1 half-open, 2 open", () => {
    expect(STATE_GAUGE).toEqual({ CLOSED: 0, HALF_OPEN: 1, OPEN: 2 });
  });

  it("finds its Lua scripts", () => {
    expect(luaSource("circuit-breaker.lua")).toContain("HALF_OPEN");
    expect(luaSource("token-bucket.lua")).toContain("redis.call('TIME')");
    expect(() => luaSource("missing.lua")).toThrow(/not found/);
  });
});
