import { TRPCClientError } from "@trpc/client";
import { describe, expect, it } from "vitest";
import { createFlashPointsClient, isFlashPointsError, isRetryableError, retryAfterMsOf, USER_ROUTING_HEADER, withRequestId, withRetry } from "./index";

function fpError(appCode: string, retryAfterMs?: number, httpStatus = 409) {
  return TRPCClientError.from({
    error: { message: appCode, code: -32009, data: { appCode, httpStatus, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) } },
  });
}

/** Records the waits instead of sleeping. */
function fakeSleep() {
  const waits: number[] = [];
  return { waits, sleep: (ms: number) => (waits.push(ms), Promise.resolve()) };
}

describe("typed errors", () => {
  it("narrows by appCode and reads the retry hint", () => {
    const e = fpError("INSUFFICIENT_BALANCE", undefined, 422);
    expect(isFlashPointsError(e)).toBe(true);
    expect(isFlashPointsError(e, "INSUFFICIENT_BALANCE")).toBe(true);
    expect(isFlashPointsError(e, "SOLD_OUT")).toBe(false);
    expect(isFlashPointsError(new Error("x"))).toBe(false);
    expect(retryAfterMsOf(fpError("RATE_LIMITED", 250, 429))).toBe(250);
    expect(retryAfterMsOf(e)).toBeUndefined();
  });

  it("retries only what may succeed later", () => {
    for (const code of ["OPERATION_LOCKED", "VERSION_CONFLICT", "DUPLICATE_REQUEST_IN_FLIGHT", "RATE_LIMITED", "CIRCUIT_OPEN", "UNAVAILABLE"]) {
      expect(isRetryableError(fpError(code)), code).toBe(true);
    }
    for (const code of ["INSUFFICIENT_BALANCE", "IDEMPOTENCY_KEY_REUSED", "VALIDATION", "INTERNAL", "FORBIDDEN", "SOLD_OUT"]) {
      expect(isRetryableError(fpError(code)), code).toBe(false);
    }
    // No answer at all (connection refused): the same request id makes a retry safe.
    expect(isRetryableError(TRPCClientError.from(new TypeError("fetch failed")))).toBe(true);
    expect(isRetryableError(new Error("a bug in the caller"))).toBe(false);
  });

  it("sends a request id through the per-call context", () => {
    expect(withRequestId("abc")).toEqual({ context: { requestId: "abc" } });
  });
});

describe("withRetry", () => {
  it("retries retryable errors with the same request id, honouring retryAfterMs", async () => {
    const { waits, sleep } = fakeSleep();
    const seen: string[] = [];
    const errors = [fpError("OPERATION_LOCKED", 120), fpError("RATE_LIMITED", 700, 429)];
    const result = await withRetry(
      async (call) => {
        seen.push(call.requestId);
        expect(call.options).toEqual({ context: { requestId: call.requestId } });
        const e = errors[call.attempt];
        if (e) throw e;
        return "done";
      },
      { sleep, random: () => 0, baseDelayMs: 50, maxDelayMs: 2000 },
    );
    expect(result).toBe("done");
    expect(seen).toHaveLength(3);
    expect(new Set(seen).size).toBe(1);
    expect(seen[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(waits).toEqual([120, 700]);
  });

  it("backs off exponentially with jitter when there is no hint, capped by maxDelayMs", async () => {
    const { waits, sleep } = fakeSleep();
    let n = 0;
    await expect(
      withRetry(
        async () => {
          n++;
          throw fpError("UNAVAILABLE");
        },
        { attempts: 6, sleep, random: () => 1, baseDelayMs: 100, maxDelayMs: 1000 },
      ),
    ).rejects.toSatisfy((e: unknown) => isFlashPointsError(e, "UNAVAILABLE"));
    expect(n).toBe(6);
    expect(waits).toEqual([100, 200, 400, 800, 1000]);
    // A hint beyond the cap is capped too.
    const capped = fakeSleep();
    await withRetry(
      async (c) => {
        if (c.attempt === 0) throw fpError("CIRCUIT_OPEN", 30_000, 503);
        return 1;
      },
      { sleep: capped.sleep, maxDelayMs: 1500 },
    );
    expect(capped.waits).toEqual([1500]);
  });

  it("gives up at once on a final error, and uses the caller's request id", async () => {
    const { waits, sleep } = fakeSleep();
    const ids: string[] = [];
    await expect(
      withRetry(
        async (c) => {
          ids.push(c.requestId);
          throw fpError("INSUFFICIENT_BALANCE", undefined, 422);
        },
        { sleep, requestId: "order-42-pay" },
      ),
    ).rejects.toSatisfy((e: unknown) => isFlashPointsError(e, "INSUFFICIENT_BALANCE"));
    expect(ids).toEqual(["order-42-pay"]);
    expect(waits).toEqual([]);
  });

  it("stops when aborted and accepts a custom retry rule", async () => {
    const controller = new AbortController();
    const { sleep } = fakeSleep();
    let n = 0;
    await expect(
      withRetry(
        async () => {
          n++;
          controller.abort();
          throw fpError("OPERATION_LOCKED", 10);
        },
        { sleep, signal: controller.signal },
      ),
    ).rejects.toBeInstanceOf(TRPCClientError);
    expect(n).toBe(1);

    let m = 0;
    const onRetry: number[] = [];
    const out = await withRetry(
      async () => {
        if (++m < 3) throw new Error("flaky");
        return m;
      },
      { sleep, retryIf: (e) => e instanceof Error && e.message === "flaky", onRetry: (i) => onRetry.push(i.attempt) },
    );
    expect(out).toBe(3);
    expect(onRetry).toEqual([0, 1]);
  });
});

describe("routing by user", () => {
  /** A client whose requests are recorded and answered with an empty success per call. */
  function recordingClient() {
    const sent: { url: string; headers: Headers }[] = [];
    const fakeFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = String(input);
      sent.push({ url, headers: new Headers(init?.headers) });
      const calls = url.includes("batch=1") ? decodeURIComponent(url).split("/api/trpc/")[1]!.split("?")[0]!.split(",").length : 1;
      const one = { result: { data: { transactionId: "t" } } };
      return new Response(JSON.stringify(url.includes("batch=1") ? Array.from({ length: calls }, () => one) : one), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    }) as typeof fetch;
    return { sent, fp: createFlashPointsClient({ url: "http://points.test", apiKey: "k", fetch: fakeFetch }) };
  }
  const input = (userId: string) => ({ userId, creditTypeId: "points", amount: 1, businessCode: "c", businessId: `b-${userId}` });

  it("names the user of a call (with its own request id, or a batch of one user's calls) in X-FlashPoints-User", async () => {
    const { sent, fp } = recordingClient();
    await fp.credit.deduct.mutate(input("alice"), withRequestId("r1"));
    await Promise.all([fp.credit.deduct.mutate(input("bob")), fp.credit.grant.mutate(input("bob"))]);
    expect(sent.map((r) => r.headers.get(USER_ROUTING_HEADER))).toEqual(["alice", "bob"]);
    expect(sent[0]!.headers.get("x-request-id")).toBe("r1");
  });

  it("leaves it out for a batch of several users, or an input without a well-formed user", async () => {
    const { sent, fp } = recordingClient();
    await Promise.all([fp.credit.deduct.mutate(input("alice")), fp.credit.deduct.mutate(input("bob"))]);
    await fp.credit.deduct.mutate(input("bad\nid"), withRequestId("r2"));
    expect(sent.map((r) => r.headers.get(USER_ROUTING_HEADER))).toEqual([null, null]);
  });
});
