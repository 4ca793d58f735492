import { describe, expect, it } from "vitest";
import { idKey } from "./redis-keys";

describe("Redis keys from ids", () => {
  it("never give two tuples of ids the same key, whatever `:` they hold", () => {
    const a = idKey("rate:acct", "a:creditType:b", "c");
    const b = idKey("rate:acct", "a", "b:creditType:c");
    expect(a).not.toBe(b);
    expect(idKey("x", "a:b", "c")).not.toBe(idKey("x", "a", "b:c"));
    expect(idKey("x", "ab", "")).not.toBe(idKey("x", "a", "b"));
    expect(idKey("lock:acct", "alice", "points")).toBe("lock:acct:5:alice:6:points");
  });
});
