import { describe, expect, it } from "vitest";
import { idTag, taggedKey } from "./redis-keys";

describe("Redis keys from ids", () => {
  it("never give two tuples of ids the same key, whatever `:` they hold", () => {
    const a = taggedKey("rate:acct", ["a:creditType:b", "c"]);
    const b = taggedKey("rate:acct", ["a", "b:creditType:c"]);
    expect(a).not.toBe(b);
    expect(taggedKey("x", ["a:b", "c"])).not.toBe(taggedKey("x", ["a", "b:c"]));
    expect(taggedKey("x", ["ab", ""])).not.toBe(taggedKey("x", ["a", "b"]));
    expect(taggedKey("lock:acct", ["alice", "points"])).toBe("lock:acct:{5:alice:6:points}");
  });

  it("makes the ids the hash tag, and a field follows it", () => {
    expect(idTag("alice", "points")).toBe("{5:alice:6:points}");
    expect(taggedKey("fs", ["item-1"], "stock")).toBe("fs:{6:item-1}:stock");
    expect(taggedKey("fs", ["a"], "stock")).not.toBe(taggedKey("fs", ["a}:stock"]));
  });
});
